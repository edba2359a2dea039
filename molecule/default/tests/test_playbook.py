"""A check-mode run of the converge playbook on the converged host must find nothing to change."""

import os
import re
import subprocess


def test_check_diff_run_reports_no_changes():
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
    run = subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], "--check", "--diff", playbook],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(run.stdout[-20000:])
    assert run.returncode == 0, run.stderr
    recap = run.stdout[run.stdout.rfind("PLAY RECAP") :]
    changed = [int(count) for count in re.findall(r"changed=(\d+)", recap)]
    assert changed, "no PLAY RECAP in the output"
    assert max(changed) == 0
