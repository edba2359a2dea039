"""Restore drills: a good backup passes and records RPO and RTO; damaged or stale backups fail."""

import json

import pytest

from conftest import (
    APP,
    BACKUP_USER,
    DRILL_RESULTS,
    FLIP_BYTE,
    METRICS,
    TRUNCATE_HALF,
    TRUNCATE_HALF_AND_REHASH,
    clone_set,
    journal,
    passed_drill_metric_lines,
    published_sets,
    run_drill,
    sql,
    start_backup,
)


def newest(db) -> str:
    return [name for name in published_sets(db) if not name.startswith(".")][-1]


@pytest.fixture(scope="module")
def good_drill(db):
    result, printed = run_drill(db)
    return result, printed


def test_good_drill_passes(good_drill):
    result, printed = good_drill
    assert result.rc == 0, result.stderr
    assert printed["passed"] is True
    assert printed["reason"] == "every check passed"


def test_good_drill_records_rpo_rto(db, good_drill):
    _, printed = good_drill
    assert 0 < printed["rpo_seconds"] < 3600
    assert 0 < printed["rto_seconds"] < 300
    recorded = json.loads(db.file(f"{DRILL_RESULTS}/last.json").content_string)
    assert recorded == printed


def test_good_drill_ran_django_checks(good_drill):
    result, _ = good_drill
    assert "running manage.py migrate --check --noinput against the scratch database" in result.stderr
    assert "running manage.py check against the scratch database" in result.stderr
    assert "sanity query 'every registro has its operativo' passed" in result.stderr
    assert "freshness of historico.registro.registrado passed" in result.stderr


def test_good_drill_writes_metrics(db, good_drill):
    _, printed = good_drill
    metrics = db.file(METRICS).content_string
    for line in passed_drill_metric_lines(printed):
        assert line in metrics


def test_good_drill_drops_scratch(db, good_drill):
    assert sql(db, "SELECT count(*) FROM pg_database WHERE datname = 'operativos_drill'", "postgres") == [["0"]]
    assert sql(db, "SELECT count(*) FROM pg_roles WHERE rolname = 'operativos_drill'", "postgres") == [["0"]]


def test_drill_service_passes_in_sandbox(db):
    """The drill unit, with its sandbox and only CAP_SETUID and CAP_SETGID, restores and checks the newest set."""
    unit = f"{APP}-backup-drill.service"
    result = db.run("systemctl start %s", unit)
    assert result.rc == 0, journal(db, unit)
    last = json.loads(db.file(f"{DRILL_RESULTS}/last.json").content_string)
    assert last["passed"] is True, last["reason"]
    assert last["backup_id"] == newest(db)
    assert "drill of backup" in journal(db, unit)


def damaged_drill(db, backup_id: str, damage: str):
    """Clone the newest set under backup_id, damage the clone's dump with a shell command, drill it, remove it."""
    folder = clone_set(db, newest(db), backup_id)
    dump = f"{folder}/{APP}.dump"
    try:
        assert db.run(damage.format(dump=dump, folder=folder)).rc == 0
        return run_drill(db, backup_id)
    finally:
        db.run("rm -rf %s", folder)


def test_truncated_dump_fails_checksum(db):
    result, printed = damaged_drill(db, "20000101T000001Z", TRUNCATE_HALF)
    assert result.rc == 1
    assert printed["passed"] is False
    assert f"sha256 mismatch on {APP}.dump" in printed["reason"]


def test_truncated_dump_fails_restore(db):
    """A dump that was cut before its checksum was taken still fails: pg_restore stops at the missing data."""
    result, printed = damaged_drill(db, "20000101T000002Z", TRUNCATE_HALF_AND_REHASH)
    assert result.rc == 1
    assert printed["passed"] is False
    assert "pg_restore" in printed["reason"]
    assert sql(db, "SELECT count(*) FROM pg_database WHERE datname = 'operativos_drill'", "postgres") == [["0"]]


def test_flipped_byte_fails_checksum(db):
    result, printed = damaged_drill(db, "20000101T000003Z", FLIP_BYTE)
    assert result.rc == 1
    assert f"sha256 mismatch on {APP}.dump" in printed["reason"]


def test_failed_drill_sets_metric_zero(db):
    metrics = db.file(METRICS).content_string
    assert f"{APP}_backup_drill_success 0\n" in metrics


def test_live_database_untouched_by_drills(db):
    assert sql(db, "SELECT current_database()") == [[APP]]
    assert int(sql(db, "SELECT count(*) FROM historico.registro")[0][0]) >= 50


@pytest.fixture(scope="module")
def stale_drill(db):
    """Back up data whose newest historico.registro row is 30 days old, then drill that backup."""
    shift = "UPDATE historico.registro SET registrado = registrado {} interval '30 days'"
    sql(db, shift.format("-"))
    try:
        result, new = start_backup(db)
    finally:
        sql(db, shift.format("+"))
    assert result.rc == 0, result.stderr
    drill = run_drill(db, new[0])
    # A fresh backup of the restored data, so later tests start from a backup that passes.
    assert start_backup(db)[0].rc == 0
    return drill


def test_stale_backup_fails_freshness(stale_drill):
    result, printed = stale_drill
    assert result.rc == 1
    assert printed["passed"] is False
    assert "freshness: newest historico.registro.registrado" in printed["reason"]


GHOST_CONFIG = "/var/tmp/ghost-config.json"


@pytest.fixture(scope="module")
def ghost(db):
    """Back up a database whose owner role is then dropped from the cluster, with the tool's own settings."""
    config = json.loads(db.file(f"/etc/{APP}-backup/config.json").content_string)
    config.update(
        db_name="ghost",
        schemas=["fantasma"],
        backup_dir="/var/tmp/ghost-backups",
        drill={
            **config["drill"],
            "scratch_db": "ghost_drill",
            "app_checks": False,
            "sanity_queries": [],
            "freshness": [],
            "result_dir": "/var/tmp/ghost-drills",
            "textfile_dir": "/var/tmp/ghost-metrics",
        },
        copy={**config["copy"], "enabled": False},
    )
    db.run("install -d -o %s -g %s -m 0750 /var/tmp/ghost-backups", BACKUP_USER, BACKUP_USER)
    db.run("printf '%%s' %s > %s && chmod 0644 %s", json.dumps(config), GHOST_CONFIG, GHOST_CONFIG)
    sql(db, "CREATE ROLE ghost LOGIN PASSWORD 'ghost-password'", "postgres")
    sql(db, "CREATE DATABASE ghost OWNER ghost", "postgres")
    sql(
        db,
        "SET ROLE ghost; CREATE SCHEMA fantasma; CREATE TABLE fantasma.t AS SELECT generate_series(1, 10) AS n",
        "ghost",
    )
    command = ["/usr/bin/python3", f"/usr/local/lib/{APP}-backup/pgbackup.py", "--config", GHOST_CONFIG]
    backup = db.run(" ".join(["%s"] * (len(command) + 5)), "runuser", "-u", BACKUP_USER, "--", *command, "backup")
    assert backup.rc == 0, backup.stderr
    sql(db, "DROP DATABASE ghost", "postgres")
    sql(db, "DROP ROLE ghost", "postgres")
    # restore-side creates roles and databases, so it runs as postgres.
    yield ["runuser", "-u", "postgres", "--", *command]
    sql(db, "DROP DATABASE IF EXISTS ghost_side WITH (FORCE)", "postgres")
    sql(db, "DROP ROLE IF EXISTS ghost", "postgres")
    db.run("rm -rf /var/tmp/ghost-backups /var/tmp/ghost-drills /var/tmp/ghost-metrics %s", GHOST_CONFIG)


def test_drill_passes_without_owner_role(db, ghost):
    result, printed = run_drill(db, "latest", GHOST_CONFIG)
    assert result.rc == 0, result.stderr
    assert printed["passed"] is True
    assert sql(db, "SELECT count(*) FROM pg_roles WHERE rolname = 'ghost'", "postgres") == [["0"]]


def test_restore_recreates_owner_from_globals(db, ghost):
    side = db.run(" ".join(["%s"] * (len(ghost) + 4)), *ghost, "restore-side", "latest", "--side", "ghost_side")
    assert side.rc == 0, side.stderr
    assert json.loads(side.stdout)["created_roles"] == ["ghost"]
    assert sql(db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ghost_side'", "postgres") == [
        ["ghost"]
    ]
    assert sql(db, "SELECT tableowner FROM pg_tables WHERE schemaname = 'fantasma'", "ghost_side") == [["ghost"]]
    assert sql(db, "SELECT count(*) FROM fantasma.t", "ghost_side") == [["10"]]


def test_restore_recreates_owner_without_password(db, ghost):
    """The globals dump contains no password hashes, so a recreated role needs a new password to log in."""
    assert sql(db, "SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = 'ghost'", "postgres") == [
        ["t", "t"]
    ]
    login = db.run(
        "PGPASSWORD=ghost-password psql -h 127.0.0.1 -U ghost -d ghost_side -tAc 'SELECT count(*) FROM fantasma.t'"
    )
    assert login.rc != 0
    assert "password authentication failed" in login.stderr
