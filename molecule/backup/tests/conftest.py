"""Helpers shared by the backup tests: SQL as postgres, the backup tool, drills and backup sets."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import testinfra

APP = "operativos"
DB_HOST = "operativos-backup"
STORE_HOST = "operativos-backup-store"
BACKUP_DIR = f"/var/backups/{APP}"
TOOL = f"/usr/local/sbin/{APP}-backup"
SERVICE = f"{APP}-backup.service"
TIMER = f"{APP}-backup.timer"
DRILL_RESULTS = f"/var/lib/{APP}-backup/drills"
METRICS = f"/var/lib/prometheus/node-exporter/{APP}_backup_drill.prom"
HOOK_LOG = "/var/tmp/backup-failures.log"
# System user that runs the backups, and its PostgreSQL login role.
BACKUP_USER = f"{APP}_backup"
SCHEMAS = ("operativos", "historico", "cuenta")


# Shell commands that damage a backup set's dump. {dump} is the dump file and {folder} the set's folder.
TRUNCATE_HALF = "truncate --size=$(( $(stat -c %s {dump}) / 2 )) {dump}"
# The dump is cut to half and the manifest gets the sha256 of the cut dump, so only pg_restore can notice.
TRUNCATE_HALF_AND_REHASH = (
    'truncate --size=$(( $(stat -c %s {dump}) / 2 )) {dump} && python3 -c "'
    "import hashlib, json, sys; p = sys.argv[1]; m = json.load(open(p + '/manifest.json')); "
    f"m['files']['{APP}.dump'] = hashlib.sha256(open(p + '/{APP}.dump', 'rb').read()).hexdigest(); "
    "json.dump(m, open(p + '/manifest.json', 'w'))\" {folder}"
)
FLIP_BYTE = (
    "python3 -c \"import sys; p = sys.argv[1]; d = bytearray(open(p, 'rb').read()); "
    "d[len(d) // 2] ^= 0x01; open(p, 'wb').write(d)\" {dump}"
)


def wait_until(check, seconds: float = 120, interval: float = 1):
    """Call check until it returns a true value or the time limit passes, and return its last value.

    The limit is wall-clock time, not a number of tries, because each check is an Ansible call and can take
    several seconds while other scenarios load the machine.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def connect(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


@pytest.fixture(scope="session")
def db():
    return connect(DB_HOST)


@pytest.fixture(scope="session")
def store():
    return connect(STORE_HOST)


def sql(host, statement: str, database: str = APP) -> list[list[str]]:
    """Run SQL as the postgres superuser; return the rows as lists of strings."""
    result = host.run(
        "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --field-separator='|' "
        "-v ON_ERROR_STOP=1 -d %s -c %s",
        database,
        statement,
    )
    assert result.rc == 0, f"psql failed: {result.stderr}"
    return [line.split("|") for line in result.stdout.splitlines() if line]


def live_counts(host) -> dict[str, int]:
    rows = sql(
        host,
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('operativos', 'historico', 'cuenta') ORDER BY 1",
    )
    return {name: int(sql(host, f"SELECT count(*) FROM {name}")[0][0]) for (name,) in rows}


def published_sets(host, folder: str = BACKUP_DIR) -> list[str]:
    """Return the names of every entry in the backup folder, sorted (published sets and anything else)."""
    return sorted(host.run("ls -1A %s", folder).stdout.split())


def manifest(host, backup_id: str) -> dict:
    return json.loads(host.run("cat %s", f"{BACKUP_DIR}/{backup_id}/manifest.json").stdout)


def journal(host, unit: str, lines: int = 40) -> str:
    return host.run("journalctl --no-pager --lines=%s --unit %s", str(lines), unit).stdout


def start_backup(host):
    """Run the backup service once; return the systemctl result and the new entries of the backup folder."""
    before = set(published_sets(host))
    # Backup ids have a resolution of one second.
    time.sleep(1)
    result = host.run("systemctl start %s", SERVICE)
    after = set(published_sets(host))
    return result, sorted(after - before)


def run_drill(host, backup_id: str = "latest", config: str | None = None):
    """Run a drill as root; return the command result and the JSON result it printed (or None)."""
    argv = (
        [TOOL]
        if config is None
        else ["/usr/bin/python3", f"/usr/local/lib/{APP}-backup/pgbackup.py", "--config", config]
    )
    result = host.run(" ".join(["%s"] * (len(argv) + 2)), *argv, "drill", backup_id)
    printed = json.loads(result.stdout) if result.stdout.strip() else None
    return result, printed


def passed_drill_metric_lines(result: dict) -> list[str]:
    """Return the textfile metric lines that a passed drill with this result writes."""
    return [
        f"{APP}_backup_drill_success 1\n",
        f"{APP}_backup_drill_rto_seconds {result['rto_seconds']:.1f}\n",
        f"{APP}_backup_drill_rpo_seconds {result['rpo_seconds']:.0f}\n",
    ]


def clone_set(host, source: str, target: str) -> str:
    """Copy a published set under another id, so a test may damage the copy; return its folder."""
    folder = f"{BACKUP_DIR}/{target}"
    assert host.run("cp -a %s %s", f"{BACKUP_DIR}/{source}", folder).rc == 0
    return folder


def ansible_playbook(playbook: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a playbook (relative to the repository, or absolute) against the scenario's inventory, with extra env."""
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    return subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            os.path.join(project, playbook),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=os.environ | (env or {}),
    )
