"""The installed units, folders and the dump role, before any backup runs."""

from conftest import APP, BACKUP_DIR, TIMER, sql


def test_timer_enabled_and_active(db):
    timer = db.service(TIMER)
    assert timer.is_enabled
    assert timer.is_running


def test_timer_persistent_with_delay(db):
    props = db.run("systemctl show --property Persistent,RandomizedDelayUSec %s", TIMER).stdout
    assert "Persistent=yes" in props
    assert "RandomizedDelayUSec=2s" in props


def test_converge_ran_no_backup(db):
    assert db.run("ls -1A %s", BACKUP_DIR).stdout.split() == []


def test_drill_timer_disabled_by_default(db):
    drill_timer = db.service(f"{APP}-backup-drill.timer")
    assert not drill_timer.is_enabled
    assert not drill_timer.is_running


def test_backup_folder_private_to_postgres(db):
    folder = db.file(BACKUP_DIR)
    assert folder.user == "postgres"
    assert folder.mode == 0o750


def test_service_calls_failure_hook(db):
    on_failure = db.run("systemctl show --property OnFailure --value %s", f"{APP}-backup.service").stdout.strip()
    assert on_failure == f"{APP}-backup-on-failure@{APP}-backup.service.service"


def test_dump_role_reads_all_data_only(db):
    rows = sql(
        db,
        "SELECT r.rolcanlogin, r.rolsuper, array_to_string(ARRAY(SELECT b.rolname FROM pg_auth_members m "
        "JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid), ',') "
        f"FROM pg_roles r WHERE r.rolname = '{APP}_backup'",
    )
    assert rows == [["f", "f", "pg_read_all_data"]]
