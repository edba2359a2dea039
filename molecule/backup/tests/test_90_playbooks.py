"""The backup and drill playbooks, the drill host checks, and a check-mode converge that must change nothing."""

import json
import os
import re
import time

from conftest import BACKUP_DIR, DB_HOST, DRILL_RESULTS, STORE_HOST, ansible_playbook
from playbook_checks import check_diff_changed_counts


def test_backup_playbook_prints_path():
    run = ansible_playbook("playbooks/backup.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(rf"is in {BACKUP_DIR}/\d{{8}}T\d{{6}}Z", run.stdout), run.stdout[-3000:]


def last_drill(host) -> str:
    return host.run("cat %s", f"{DRILL_RESULTS}/last.json").stdout


def test_verify_restore_playbook_passes():
    run = ansible_playbook("playbooks/verify-restore.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "every check passed" in run.stdout


def test_verify_restore_runs_on_drill_host(db, store):
    """backup_drill_host of operativos-backup is the backup host, so the playbook drills there only."""
    before_db, before_store = last_drill(db), last_drill(store)
    # Drill results are named by their start second.
    time.sleep(1)
    run = ansible_playbook("playbooks/verify-restore.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"[{DB_HOST} -> {STORE_HOST}]" in run.stdout
    assert last_drill(db) == before_db
    after = json.loads(last_drill(store))
    assert last_drill(store) != before_store
    assert after["passed"] is True, after["reason"]


def test_validate_rejects_unknown_drill_host():
    run = ansible_playbook("playbooks/validate.yml", "-e", "backup_drill_host=operativos-nowhere")
    assert run.returncode != 0
    assert "backup_drill_host ('operativos-nowhere') must be this database host" in run.stderr


def test_validate_rejects_app_checks_on_drill_host():
    run = ansible_playbook("playbooks/validate.yml", "-e", "backup_drill_app_checks=true")
    assert run.returncode != 0
    assert f"backup_drill_app_checks is true for {STORE_HOST}, the drill host of {DB_HOST}" in run.stderr
    assert f"Set backup_drill_app_checks: false for {STORE_HOST}" in run.stderr


def test_backup_host_rejects_app_checks(tmp_path):
    """The drill_host entry point checks the setting before it changes anything on the backup host."""
    playbook = tmp_path / "drill-host.yml"
    playbook.write_text(
        "- name: Set up restore drills on the backup host\n"
        "  hosts: backupservers\n"
        "  become: true\n"
        "  tasks:\n"
        "    - name: Run the drill_host entry point\n"
        "      ansible.builtin.include_role:\n"
        "        name: backup\n"
        "        tasks_from: drill_host.yml\n"
    )
    roles = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "roles")
    run = ansible_playbook(str(playbook), "-e", "backup_drill_app_checks=true", env={"ANSIBLE_ROLES_PATH": roles})
    assert run.returncode != 0
    assert f"backup_drill_app_checks is true on {STORE_HOST}, the drill host of {DB_HOST}" in run.stderr
    assert f"Set backup_drill_app_checks: false for {STORE_HOST}" in run.stderr
    assert "changed=0" in run.stdout[run.stdout.rfind("PLAY RECAP") :]


def test_verify_restore_rejects_bad_id():
    run = ansible_playbook("playbooks/verify-restore.yml", "-e", "verify_restore_backup=20000101T000000Z")
    assert run.returncode != 0
    assert "not found" in run.stdout


def test_check_diff_run_reports_no_changes():
    assert max(check_diff_changed_counts()) == 0
