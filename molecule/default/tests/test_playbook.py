"""A check-mode run of the converge playbook on the converged host must find nothing to change."""

from playbook_checks import check_diff_changed_counts


def test_check_diff_run_reports_no_changes():
    assert max(check_diff_changed_counts()) == 0
