"""The streaming standby: it follows the primary over TLS, refuses writes, and takes the backups."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import APP, REPLICA, connects, private_address, psql

BACKUP_DIR = f"/var/backups/{APP}"
SLOT = "replica_" + REPLICA.lower().replace("-", "_")


def run_playbook(name: str, *extra: str) -> subprocess.CompletedProcess:
    playbook = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", name)
    command = ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *extra]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    print(f"$ {' '.join(command)}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    return run


def test_standby_is_in_recovery_and_streams(replica):
    assert psql(replica, "SELECT pg_is_in_recovery()") == "t"
    assert psql(replica, "SELECT status FROM pg_stat_wal_receiver") == "streaming"


def test_primary_streams_to_the_standby_over_tls(db, replica):
    rows = psql(
        db,
        "SELECT r.application_name, host(r.client_addr), r.state, s.ssl "
        "FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)",
    ).splitlines()
    assert rows == [f"{SLOT}|{private_address(replica)}|streaming|t"]


def test_primary_keeps_a_physical_slot_for_the_standby(db):
    assert psql(db, "SELECT slot_name, slot_type, active FROM pg_replication_slots") == f"{SLOT}|physical|t"
    assert psql(db, "SHOW max_slot_wal_keep_size") == "1GB"


def test_pg_hba_admits_replication_from_the_standby_only(db, replica):
    hba = db.file(psql(db, "SHOW hba_file")).content_string
    lines = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    replication = [line for line in lines if line[1] == "replication"]
    assert replication == [
        ["hostssl", "replication", f"{APP}_replicator", f"{private_address(replica)}/32", "scram-sha-256"]
    ]


def test_replication_role_has_only_replication(db):
    flags = psql(
        db,
        f"SELECT rolreplication, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{APP}_replicator'",
    )
    assert flags == "t|f|f|f"


def test_password_file_is_private(replica):
    passfile = replica.file("/var/lib/postgresql/.pgpass-replication")
    assert passfile.user == "postgres"
    assert passfile.mode == 0o600


def test_write_on_primary_reaches_the_standby(db, replica):
    token = f"probe-{time.time_ns()}"
    psql(db, "CREATE TABLE IF NOT EXISTS replica_probe (token text)")
    psql(db, f"INSERT INTO replica_probe VALUES ('{token}')")
    for _ in range(30):
        if psql(replica, f"SELECT count(*) FROM replica_probe WHERE token = '{token}'") == "1":
            break
        time.sleep(1)
    else:
        pytest.fail("the row written on the primary did not reach the standby within 30 s")


def test_standby_refuses_writes(replica):
    result = replica.run(
        "runuser -u postgres -- psql --no-psqlrc --dbname postgres -c %s", "CREATE TABLE refused (id int)"
    )
    assert result.rc != 0
    assert "read-only transaction" in result.stderr


def test_standby_holds_the_application_database(replica):
    schemas = psql(
        replica,
        "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace "
        f"WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = '{APP}')",
        database=APP,
    )
    assert schemas == "cuenta,historico,operativos"


def test_backup_timer_runs_on_the_standby_only(db, replica):
    assert replica.service(f"{APP}-backup.timer").is_enabled
    assert not db.file(f"/etc/systemd/system/{APP}-backup.timer").exists
    assert not db.file(BACKUP_DIR).exists


def test_deploy_took_its_safety_dump_on_the_standby(replica):
    listing = replica.run("runuser -u postgres -- /usr/local/sbin/%s-backup list", APP)
    assert listing.rc == 0, listing.stderr
    kinds = {(entry["kind"], entry.get("label", "")[:11]) for entry in json.loads(listing.stdout)}
    assert ("safety", "pre-deploy-") in kinds, kinds


def test_backup_playbook_dumps_the_standby(replica):
    before = set(replica.run("ls -1 %s", BACKUP_DIR).stdout.split())
    run = run_playbook("backup.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    new = set(replica.run("ls -1 %s", BACKUP_DIR).stdout.split()) - before
    assert len(new) == 1, new
    listed = replica.run("runuser -u postgres -- pg_restore --list %s/%s/%s.dump", BACKUP_DIR, new.pop(), APP)
    assert listed.rc == 0, listed.stderr
    assert "TABLE DATA historico registro" in listed.stdout


def test_replication_playbook_reports_the_standby(replica):
    run = run_playbook("replication.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert SLOT in run.stdout
    assert f"{REPLICA}: in recovery, receiver streaming" in " ".join(run.stdout.split())


def test_replication_playbook_fails_when_the_standby_stops(replica):
    unit = replica.run("systemctl list-units --plain --no-legend 'postgresql@*-main.service'").stdout.split()[0]
    stop = replica.run("systemctl stop %s", unit)
    assert stop.rc == 0, stop.stderr
    try:
        run = run_playbook("replication.yml")
    finally:
        start = replica.run("systemctl start %s", unit)
        assert start.rc == 0, start.stderr
    assert run.returncode != 0
    output = " ".join((run.stdout + run.stderr).split())
    assert f"Standby {SLOT}: no streaming connection to the primary" in output
    # Back in recovery and streaming after the start.
    for _ in range(30):
        if psql(replica, "SELECT status FROM pg_stat_wal_receiver") == "streaming":
            break
        time.sleep(1)
    else:
        pytest.fail("the standby did not stream again within 30 s of its start")


def test_firewall_admits_the_standby_to_postgresql(db, replica):
    assert connects(replica, private_address(db), 5432)
