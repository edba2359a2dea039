"""Run a scenario's converge playbook in check mode, for the tests that require it to change nothing."""

from __future__ import annotations

import os
import re
import subprocess


def check_diff_changed_counts() -> list[int]:
    """Run converge.yml with --check --diff against the scenario's inventory; return the recap's changed counts.

    The output is printed, so pytest shows it when the calling test fails. A failed run fails here.
    """
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
    return changed


def run_converge(*options: str, inventory: str | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the scenario's converge playbook with extra command-line options; return the finished process.

    Nothing is printed: callers decide what reaches the test log, because some runs carry secrets.
    """
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
    return subprocess.run(
        ["ansible-playbook", "--inventory", inventory or os.environ["MOLECULE_INVENTORY_FILE"], *options, playbook],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recap_changed_counts(output: str) -> list[int]:
    """Return the changed counts of the last PLAY RECAP in ansible-playbook's output."""
    recap = output[output.rfind("PLAY RECAP") :]
    return [int(count) for count in re.findall(r"changed=(\d+)", recap)]
