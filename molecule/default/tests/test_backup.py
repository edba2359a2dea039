"""The first-cut backup: a persistent timer and a service that writes a restorable dump."""

import pytest

from conftest import APP, unit_journal
from unit_security import exposure_level

SERVICE = f"{APP}-backup.service"
TIMER = f"{APP}-backup.timer"
BACKUP_DIR = f"/var/backups/{APP}"


def test_timer_is_enabled_and_active(host):
    timer = host.service(TIMER)
    assert timer.is_enabled
    assert timer.is_running


def test_timer_is_persistent(host):
    assert host.run("systemctl show --property Persistent --value %s", TIMER).stdout.strip() == "yes"


def test_backup_folder_is_private_to_backup_user(host):
    folder = host.file(BACKUP_DIR)
    assert folder.user == f"{APP}_backup"
    assert folder.mode == 0o750


def test_backup_service_exposure_at_most_3(host):
    level = exposure_level(host, SERVICE)
    assert level <= 3.0, f"{SERVICE}: exposure {level} is above 3.0"


@pytest.fixture(scope="module")
def backup_run(host):
    before = set(host.run("ls -1 %s", BACKUP_DIR).stdout.split())
    result = host.run("systemctl start %s", SERVICE)
    after = set(host.run("ls -1 %s", BACKUP_DIR).stdout.split())
    return result, sorted(after - before)


def test_backup_service_succeeds(host, backup_run):
    result, _ = backup_run
    assert result.rc == 0, unit_journal(host, SERVICE)


def test_backup_writes_one_new_set(backup_run):
    _, new_sets = backup_run
    assert len(new_sets) == 1
    assert not new_sets[0].startswith(".partial")


def test_dump_is_readable_by_pg_restore(host, backup_run):
    _, new_sets = backup_run
    dump = f"{BACKUP_DIR}/{new_sets[0]}/{APP}.dump"
    listing = host.run("pg_restore --list %s", dump)
    assert listing.rc == 0, listing.stderr
    assert "TABLE DATA historico registro" in listing.stdout


def test_dump_checksum_matches(host, backup_run):
    _, new_sets = backup_run
    result = host.run("cd %s && sha256sum --check --quiet SHA256SUMS", f"{BACKUP_DIR}/{new_sets[0]}")
    assert result.rc == 0, result.stdout + result.stderr
