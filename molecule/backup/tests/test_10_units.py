"""The installed units, their sandbox, folders, secret files and the backup role, before any backup runs."""

import pytest

from conftest import APP, BACKUP_DIR, BACKUP_USER, SERVICE, TIMER, sql
from unit_security import SANDBOX_PROPERTIES, exposure_level

DRILL_SERVICE = f"{APP}-backup-drill.service"
CONF_DIR = f"/etc/{APP}-backup"


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


def test_drill_timer_off_on_database_host(db):
    """backup_drill_timer_enabled is true here too, but the drills run on the backup host."""
    drill_timer = db.service(f"{APP}-backup-drill.timer")
    assert not drill_timer.is_enabled
    assert not drill_timer.is_running


def test_backup_folder_private_to_backup_user(db):
    folder = db.file(BACKUP_DIR)
    assert folder.user == BACKUP_USER
    assert folder.group == BACKUP_USER
    assert folder.mode == 0o750


def test_backup_user_is_system_user(db):
    user = db.user(BACKUP_USER)
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"


def test_postgres_in_backup_group(db):
    assert BACKUP_USER in db.user("postgres").groups


@pytest.mark.parametrize(
    ("name", "user", "group", "mode"),
    [
        ("copy_ed25519", BACKUP_USER, BACKUP_USER, 0o600),
        ("config.json", "root", BACKUP_USER, 0o640),
        ("known_hosts", "root", BACKUP_USER, 0o644),
    ],
)
def test_settings_file_mode(db, name, user, group, mode):
    settings = db.file(f"{CONF_DIR}/{name}")
    assert settings.user == user
    assert settings.group == group
    assert settings.mode == mode


def test_no_pgpass_file(db):
    found = db.run("find / -xdev -name .pgpass -print").stdout.split()
    assert found == []


@pytest.mark.parametrize(("unit", "limit"), [(SERVICE, 3.0), (DRILL_SERVICE, 3.0)])
def test_service_exposure_within_limit(db, unit, limit):
    level = exposure_level(db, unit)
    assert level <= limit, f"{unit}: exposure {level} is above {limit}"


@pytest.mark.parametrize("unit", [SERVICE, DRILL_SERVICE])
@pytest.mark.parametrize(("name", "expected"), SANDBOX_PROPERTIES)
def test_service_sandbox_property(db, unit, name, expected):
    value = db.run("systemctl show --property %s --value %s", name, unit).stdout.strip()
    assert value == expected


def test_backup_service_runs_as_backup_user(db):
    value = db.run("systemctl show --property User,CapabilityBoundingSet,ReadWritePaths %s", SERVICE).stdout
    assert f"User={BACKUP_USER}" in value.splitlines()
    assert "CapabilityBoundingSet=" in value.splitlines()
    assert f"ReadWritePaths={BACKUP_DIR}" in value.splitlines()


def test_drill_service_keeps_only_setuid_setgid(db):
    value = db.run("systemctl show --property CapabilityBoundingSet --value %s", DRILL_SERVICE).stdout.split()
    assert sorted(value) == ["cap_setgid", "cap_setuid"]


def test_service_calls_failure_hook(db):
    on_failure = db.run("systemctl show --property OnFailure --value %s", f"{APP}-backup.service").stdout.strip()
    assert on_failure == f"{APP}-backup-on-failure@{APP}-backup.service.service"


def test_backup_role_reads_all_data_only(db):
    rows = sql(
        db,
        "SELECT r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, "
        "array_to_string(ARRAY(SELECT b.rolname FROM pg_auth_members m "
        "JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid), ',') "
        f"FROM pg_roles r WHERE r.rolname = '{BACKUP_USER}'",
    )
    assert rows == [["t", "f", "f", "f", "f", "f", "pg_read_all_data"]]


def test_backup_role_has_no_password(db):
    assert sql(db, f"SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = '{BACKUP_USER}'") == [["t"]]


def test_backup_user_logs_in_by_peer(db):
    result = db.run(
        "runuser -u %s -- psql --no-psqlrc --no-password --tuples-only --no-align -d %s -c %s",
        BACKUP_USER,
        APP,
        "SELECT current_user, pg_has_role('pg_read_all_data', 'USAGE')",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == f"{BACKUP_USER}|t"
