"""The backup and drill playbooks, and a check-mode run of the converge playbook that must change nothing."""

import re

from conftest import BACKUP_DIR, ansible_playbook
from playbook_checks import check_diff_changed_counts


def test_backup_playbook_prints_path():
    run = ansible_playbook("playbooks/backup.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(rf"is in {BACKUP_DIR}/\d{{8}}T\d{{6}}Z", run.stdout), run.stdout[-3000:]


def test_verify_restore_playbook_passes():
    run = ansible_playbook("playbooks/verify-restore.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "every check passed" in run.stdout


def test_verify_restore_rejects_bad_id():
    run = ansible_playbook("playbooks/verify-restore.yml", "-e", "verify_restore_backup=20000101T000000Z")
    assert run.returncode != 0
    assert "not found" in run.stdout


def test_check_diff_run_reports_no_changes():
    assert max(check_diff_changed_counts()) == 0
