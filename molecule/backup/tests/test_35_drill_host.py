"""Restore drills on the backup host: its scratch cluster, its drill unit, and drills of the copies it received.

operativos-backup sets backup_drill_host to operativos-backup-store in the scenario's host_vars.
"""

import json

import pytest

from conftest import (
    APP,
    DB_HOST,
    DRILL_RESULTS,
    FLIP_BYTE,
    METRICS,
    TOOL,
    TRUNCATE_HALF,
    TRUNCATE_HALF_AND_REHASH,
    journal,
    passed_drill_metric_lines,
    run_drill,
    sql,
)
from unit_security import SANDBOX_PROPERTIES, exposure_level

COPIES = f"/var/backups/{APP}-copies/{DB_HOST}"
COPY_USER = f"{APP}-backup"
DRILL_SERVICE = f"{APP}-backup-drill.service"
DRILL_TIMER = f"{APP}-backup-drill.timer"
SCRATCH = f"{APP}_drill"
# Table of a database that the tests create on the database host under the scratch database's name. A drill
# run there would drop that database, because drill-restore drops a leftover scratch database and drill-cleanup
# drops the scratch database.
SENTINEL_TABLE = "public.sentinel"


def server_major(host) -> int:
    return int(sql(host, "SHOW server_version_num", "postgres")[0][0]) // 10000


def newest_copy(store) -> str:
    """Return the id of the newest complete copy: copies without manifest.json are incomplete."""
    found = store.run("find %s -mindepth 2 -maxdepth 2 -name manifest.json -printf '%%h\\n'", COPIES).stdout
    return sorted(line.rsplit("/", 1)[1] for line in found.split())[-1]


def database_oids(host) -> dict[str, str]:
    return dict(sql(host, "SELECT datname, oid FROM pg_database ORDER BY 1", "postgres"))


@pytest.fixture(scope="module")
def sentinel(db):
    """Create a database named like the scratch database on the database host, with one row; yield the OIDs."""
    sql(db, f"CREATE DATABASE {SCRATCH}", "postgres")
    sql(db, f"CREATE TABLE {SENTINEL_TABLE} (note text); INSERT INTO {SENTINEL_TABLE} VALUES ('untouched')", SCRATCH)
    yield database_oids(db)
    sql(db, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)", "postgres")


@pytest.fixture(scope="module")
def service_drill(store, sentinel):
    """Start the drill service on the backup host once; return the systemctl result and last.json."""
    result = store.run("systemctl start %s", DRILL_SERVICE)
    last = json.loads(store.file(f"{DRILL_RESULTS}/last.json").content_string)
    return result, last


def test_scratch_cluster_matches_database_major(db, store):
    assert server_major(store) == server_major(db)


def test_scratch_cluster_is_debian_package(db, store):
    package = f"postgresql-{server_major(db)}"
    assert store.package(package).is_installed
    assert store.service(f"postgresql@{server_major(db)}-main.service").is_enabled


def test_scratch_cluster_listens_on_socket_only(store):
    setting = sql(store, "SELECT setting = '' FROM pg_settings WHERE name = 'listen_addresses'", "postgres")
    assert setting == [["t"]]
    listeners = store.run("ss --no-header --listening --tcp --numeric 'sport = :5432'")
    assert listeners.rc == 0, listeners.stderr
    assert listeners.stdout.strip() == ""
    assert store.socket("unix:///var/run/postgresql/.s.PGSQL.5432").is_listening


def test_scratch_cluster_hba_peer_scram_only(store):
    rules = sql(
        store,
        "SELECT type, database[1], user_name[1], auth_method, error FROM pg_hba_file_rules ORDER BY line_number",
        "postgres",
    )
    assert rules == [
        ["local", "all", "postgres", "peer", ""],
        ["local", "all", "all", "scram-sha-256", ""],
    ]


def test_drill_host_settings_point_at_copies(store):
    settings = json.loads(store.file(f"/etc/{APP}-backup/config.json").content_string)
    assert settings["backup_dir"] == COPIES
    assert settings["drill"]["app_checks"] is False
    assert settings["copy"]["enabled"] is False


def test_drill_host_takes_database_host_checks(store):
    """The freshness rule and the extra sanity query are set only in operativos-backup's host_vars."""
    settings = json.loads(store.file(f"/etc/{APP}-backup/config.json").content_string)
    assert [rule["table"] for rule in settings["drill"]["freshness"]] == ["historico.registro"]
    names = [query["name"] for query in settings["drill"]["sanity_queries"]]
    assert names == ["migrations recorded", "every registro has its operativo"]


def test_drill_host_has_no_backup_service(store):
    assert not store.file(f"/etc/systemd/system/{APP}-backup.service").exists
    assert not store.file(f"/etc/systemd/system/{APP}-backup.timer").exists


def test_postgres_reads_copies_through_group(store):
    assert COPY_USER in store.user("postgres").groups


def test_drill_timer_active_on_drill_host(store):
    timer = store.service(DRILL_TIMER)
    assert timer.is_enabled
    assert timer.is_running


def test_drill_service_exposure_within_limit(store):
    level = exposure_level(store, DRILL_SERVICE)
    assert level <= 3.0, f"{DRILL_SERVICE}: exposure {level} is above 3.0"


@pytest.mark.parametrize(("name", "expected"), SANDBOX_PROPERTIES)
def test_drill_service_sandbox_property(store, name, expected):
    value = store.run("systemctl show --property %s --value %s", name, DRILL_SERVICE).stdout.strip()
    assert value == expected


def test_drill_service_capabilities_and_paths(store):
    def show(name: str) -> str:
        return store.run("systemctl show --property %s --value %s", name, DRILL_SERVICE).stdout.strip()

    assert sorted(show("CapabilityBoundingSet").split()) == ["cap_setgid", "cap_setuid"]
    assert show("SupplementaryGroups") == COPY_USER
    assert sorted(show("ReadWritePaths").split()) == [DRILL_RESULTS, METRICS.rsplit("/", 1)[0]]


def test_service_drill_passes(store, service_drill):
    result, last = service_drill
    assert result.rc == 0, journal(store, DRILL_SERVICE)
    assert last["passed"] is True, last["reason"]
    assert last["backup_id"] == newest_copy(store)


def test_service_drill_records_rpo_rto(store, service_drill):
    _, last = service_drill
    assert 0 < last["rpo_seconds"] < 3600
    assert 0 < last["rto_seconds"] < 300
    assert last["host"] == store.run("python3 -c 'import socket; print(socket.getfqdn())'").stdout.strip()


def test_service_drill_writes_metrics(store, service_drill):
    _, last = service_drill
    metrics = store.file(METRICS).content_string
    for line in passed_drill_metric_lines(last):
        assert line in metrics


def test_service_drill_skips_app_checks(store, service_drill):
    _, last = service_drill
    log = journal(store, DRILL_SERVICE, 200)
    assert last["app_checks"] is False
    assert "application checks are off (backup_drill_app_checks)" in log
    assert "running manage.py" not in log


def test_service_drill_runs_data_checks(store, service_drill):
    log = journal(store, DRILL_SERVICE, 200)
    assert "sanity query 'every registro has its operativo' passed" in log
    assert "freshness of historico.registro.registrado passed" in log


def test_service_drill_drops_scratch(store, service_drill):
    assert sql(store, f"SELECT count(*) FROM pg_database WHERE datname = '{SCRATCH}'", "postgres") == [["0"]]
    assert sql(store, f"SELECT count(*) FROM pg_roles WHERE rolname = '{SCRATCH}'", "postgres") == [["0"]]


def damaged_copy_drill(store, backup_id: str, damage: str):
    """Clone the newest copy under backup_id, damage the clone's dump, drill it on the backup host, remove it."""
    folder = f"{COPIES}/{backup_id}"
    assert store.run("cp -a %s %s", f"{COPIES}/{newest_copy(store)}", folder).rc == 0
    try:
        assert store.run(damage.format(dump=f"{folder}/{APP}.dump", folder=folder)).rc == 0
        return run_drill(store, backup_id)
    finally:
        store.run("rm -rf %s", folder)


def test_truncated_copy_fails_checksum(store, sentinel):
    result, printed = damaged_copy_drill(store, "20000101T000011Z", TRUNCATE_HALF)
    assert result.rc == 1
    assert printed["passed"] is False
    assert f"sha256 mismatch on {APP}.dump" in printed["reason"]


def test_truncated_copy_fails_restore(store, sentinel):
    result, printed = damaged_copy_drill(store, "20000101T000012Z", TRUNCATE_HALF_AND_REHASH)
    assert result.rc == 1
    assert printed["passed"] is False
    assert "pg_restore" in printed["reason"]
    assert sql(store, f"SELECT count(*) FROM pg_database WHERE datname = '{SCRATCH}'", "postgres") == [["0"]]


def test_corrupt_copy_fails_checksum(store, sentinel):
    result, printed = damaged_copy_drill(store, "20000101T000013Z", FLIP_BYTE)
    assert result.rc == 1
    assert f"sha256 mismatch on {APP}.dump" in printed["reason"]


def test_failed_copy_drill_recorded_on_drill_host(store):
    last = json.loads(store.file(f"{DRILL_RESULTS}/last.json").content_string)
    assert last["backup_id"] == "20000101T000013Z"
    assert last["passed"] is False
    assert f"{APP}_backup_drill_success 0\n" in store.file(METRICS).content_string


def test_drills_left_database_host_alone(db, sentinel, service_drill):
    """The drills above never touched the database host's cluster: no database came or went."""
    assert database_oids(db) == sentinel
    assert sql(db, f"SELECT note FROM {SENTINEL_TABLE}", SCRATCH) == [["untouched"]]


def test_drill_command_on_drill_host_reads_copies(store):
    listed = store.run("%s list", TOOL)
    assert listed.rc == 0, listed.stderr
    assert json.loads(listed.stdout)[-1]["path"] == f"{COPIES}/{newest_copy(store)}"
