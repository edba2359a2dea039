"""Failed backups: the unit fails, the failure hook runs, earlier sets stay, and nothing is half-published."""

import pytest

from conftest import APP, BACKUP_DIR, BACKUP_USER, HOOK_LOG, SERVICE, journal, published_sets, sql, wait_until


def fingerprint(db) -> str:
    """Return the sha256 sums of every file in the backup folder, to prove earlier sets are untouched."""
    return db.run("cd %s && find . -type f -print0 | sort -z | xargs -0 sha256sum", BACKUP_DIR).stdout


def hook_calls(db) -> int:
    return int(db.run("grep -c -x %s %s", SERVICE, HOOK_LOG).stdout.strip() or 0)


def wait_for_unit_end(db, unit: str, seconds: int = 120) -> None:
    def ended() -> bool:
        state = db.run("systemctl show --property ActiveState --value %s", unit).stdout.strip()
        return state not in ("activating", "deactivating", "active")

    assert wait_until(ended, seconds), f"{unit} still running after {seconds} s:\n{journal(db, unit)}"


def pg_unit(db) -> str:
    return db.run("systemctl list-units --plain --no-legend 'postgresql@*-main.service'").stdout.split()[0]


@pytest.fixture
def before(db):
    return published_sets(db), fingerprint(db), hook_calls(db)


def assert_failed_cleanly(db, before) -> None:
    sets, prints, hooks = before
    assert db.run("systemctl is-failed %s", SERVICE).stdout.strip() == "failed", journal(db, SERVICE)
    assert published_sets(db) == sets, "a failed backup left or removed an entry in the backup folder"
    assert fingerprint(db) == prints
    # The hook runs in its own unit right after the failure.
    hook_ran = wait_until(lambda: hook_calls(db) == hooks + 1, 60)
    assert hook_ran, f"on-failure hook did not run: {db.file(HOOK_LOG).content_string}"


def lock_granted(db) -> bool:
    """Return whether a session has been granted the ACCESS EXCLUSIVE lock on historico.registro."""
    rows = sql(
        db,
        "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted "
        "AND relation = 'historico.registro'::regclass",
    )
    return rows == [["1"]]


def dump_waits_for_lock(db) -> bool:
    """Return whether the backup's pg_dump session is waiting for a lock."""
    rows = sql(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('pgbackup', 'pg_dump') "
        "AND wait_event_type = 'Lock'",
        "postgres",
    )
    return rows == [["1"]]


def test_database_stopped_mid_backup(db, before):
    """pg_dump waits for a lock held by another session, and the cluster stops while it waits."""
    cluster = pg_unit(db)
    # A transient unit takes the lock, so the lock outlives the command that starts the unit. Its pg_sleep(900)
    # outlasts the waits below, and the finally clause stops the unit.
    holder = (
        "systemd-run --unit=backup-test-lock --uid=postgres --collect --setenv=PGAPPNAME=backup-test-lock "
        "psql -d operativos -c "
        "'BEGIN; LOCK TABLE historico.registro IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(900)'"
    )
    assert db.run(holder).rc == 0
    try:
        assert wait_until(lambda: lock_granted(db), 120, 0.5), journal(db, "backup-test-lock.service")
        assert db.run("systemctl start --no-block %s", SERVICE).rc == 0
        assert wait_until(lambda: dump_waits_for_lock(db), 120, 0.5), journal(db, SERVICE)
        assert db.run("systemctl stop %s", cluster).rc == 0
        wait_for_unit_end(db, SERVICE)
    finally:
        db.run("systemctl stop backup-test-lock.service")
        db.run("systemctl start %s", cluster)
        # Stopping the unit ends psql only. Its server session keeps the lock unless the cluster was stopped.
        db.run(
            "runuser -u postgres -- psql -c %s",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'backup-test-lock'",
        )
    assert_failed_cleanly(db, before)
    assert "ERROR backup failed" in journal(db, SERVICE)


def test_backup_folder_full(db, before):
    """A 16 KiB tmpfs over the backup folder: the dump cannot be written."""
    mount = "mount -t tmpfs -o size=16k,mode=0750,uid=$(id -u %s),gid=$(id -g %s) tmpfs %s"
    assert db.run(mount, BACKUP_USER, BACKUP_USER, BACKUP_DIR).rc == 0
    try:
        assert db.run("systemctl start %s", SERVICE).rc != 0
        leftovers = db.run("ls -1A %s", BACKUP_DIR).stdout.split()
        log = journal(db, SERVICE)
    finally:
        assert db.run("umount %s", BACKUP_DIR).rc == 0
    assert leftovers == [], f"half-written files left: {leftovers}"
    assert "No space left on device" in log
    assert_failed_cleanly(db, before)


def test_backup_role_needs_read_all_data(db, before):
    """Without pg_read_all_data the backup role cannot read the tables, so pg_dump really runs as that role."""
    sql(db, f"REVOKE pg_read_all_data FROM {APP}_backup", "postgres")
    try:
        result = db.run("systemctl start %s", SERVICE)
    finally:
        sql(db, f"GRANT pg_read_all_data TO {APP}_backup", "postgres")
    assert result.rc != 0
    assert "permission denied" in journal(db, SERVICE)
    assert_failed_cleanly(db, before)


def test_backup_works_again(db):
    assert db.run("systemctl start %s", SERVICE).rc == 0, journal(db, SERVICE)
