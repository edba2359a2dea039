#!/usr/bin/env python3
"""Measure backup, restore drill and plain pg_dump + pg_restore times on generated data in a container.

Starts the systemd container operativos-backup-bench, converges bench.yml on it (common, postgresql, backup),
fills the three schemas with generated rows up to each requested size, and runs each measurement several
times. Prints a Markdown table of the medians. Remove the container afterwards with --destroy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[2]
CONTAINER = "operativos-backup-bench"
APP = "operativos"


def sh(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    log.debug("running %s", " ".join(argv))
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def dexec(command: str) -> str:
    return sh(["docker", "exec", CONTAINER, "bash", "-c", command]).stdout


def psql(statement: str, database: str = APP) -> str:
    return dexec(f'runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt -d {database} -c "{statement}"').strip()


def start_container(image: str) -> None:
    if sh(["docker", "ps", "-aq", "--filter", f"name=^{CONTAINER}$"]).stdout.strip():
        log.info("container %s exists; reusing it", CONTAINER)
        return
    log.info("starting container %s from %s", CONTAINER, image)
    sh(
        [
            "docker",
            "run",
            # The image is built locally (tools/build-base-image.sh); no registry is ever asked for it.
            "--pull",
            "never",
            "-d",
            "--name",
            CONTAINER,
            "--hostname",
            CONTAINER,
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "NET_ADMIN",
            "--cgroupns",
            "host",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp",
            "--stop-signal",
            "SIGRTMIN+3",
            image,
            "/lib/systemd/systemd",
        ]
    )
    for _ in range(60):
        state = subprocess.run(
            ["docker", "exec", CONTAINER, "systemctl", "is-system-running"], text=True, capture_output=True, check=False
        ).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise RuntimeError(f"systemd in {CONTAINER} did not finish booting")


def converge() -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inventory:
        inventory.write(
            f"all:\n  children:\n    dbservers:\n      hosts:\n        {CONTAINER}:\n"
            "  vars:\n    ansible_connection: community.docker.docker\n    ansible_user: root\n"
        )
    log.info("converging bench.yml on %s", CONTAINER)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    sh(["ansible-playbook", "-i", inventory.name, str(Path(__file__).with_name("bench.yml"))], env=env)
    os.unlink(inventory.name)


def fill(size_mib: int) -> None:
    """Create one table per schema and add rows until the database is about size_mib MiB."""
    psql(
        "CREATE SCHEMA IF NOT EXISTS operativos; CREATE SCHEMA IF NOT EXISTS historico; "
        "CREATE SCHEMA IF NOT EXISTS cuenta; "
        "CREATE TABLE IF NOT EXISTS operativos.operativo (id bigserial PRIMARY KEY, nombre text, fecha date, "
        "creado timestamptz); "
        "CREATE TABLE IF NOT EXISTS historico.registro (id bigserial PRIMARY KEY, operativo_id bigint, "
        "descripcion text, registrado timestamptz); "
        "CREATE TABLE IF NOT EXISTS cuenta.perfil (id bigserial PRIMARY KEY, telefono text, nota text)"
    )
    while int(psql(f"SELECT pg_database_size('{APP}')")) < size_mib * 1024 * 1024:
        psql(
            "INSERT INTO operativos.operativo (nombre, fecha, creado) SELECT 'operativo ' || g, "
            "current_date - (g % 3650), now() - g * interval '1 minute' FROM generate_series(1, 20000) g; "
            "INSERT INTO historico.registro (operativo_id, descripcion, registrado) SELECT g % 20000 + 1, "
            "md5(g::text) || ' ' || md5((g * 7)::text) || ' ' || repeat('texto ', 10), now() - g * interval '1 s' "
            "FROM generate_series(1, 200000) g; "
            "INSERT INTO cuenta.perfil (telefono, nota) SELECT '+34 600 ' || g, md5(g::text) "
            "FROM generate_series(1, 20000) g"
        )
    psql("VACUUM ANALYZE")
    log.info("database size %s", psql(f"SELECT pg_size_pretty(pg_database_size('{APP}'))"))


def timed(command: str) -> float:
    started = time.monotonic()
    dexec(command)
    return time.monotonic() - started


def measure(runs: int) -> dict[str, float]:
    backup, drill, dump, restore, sizes = [], [], [], [], []
    for run in range(runs):
        log.info("run %d of %d", run + 1, runs)
        dexec(f"rm -rf /var/backups/{APP}/* /var/tmp/plain.dump")
        backup.append(timed(f"systemctl start {APP}-backup.service"))
        sizes.append(int(dexec(f"du -sb /var/backups/{APP}/*/ | cut -f1").split()[0]))
        drill.append(timed(f"/usr/local/sbin/{APP}-backup drill"))
        dump.append(timed(f"runuser -u postgres -- pg_dump -Fc -f /var/tmp/plain.dump {APP}"))
        restore.append(
            timed(
                "runuser -u postgres -- dropdb --if-exists plain && runuser -u postgres -- createdb "
                "plain && runuser -u postgres -- pg_restore --exit-on-error -d plain /var/tmp/plain.dump"
            )
        )
    dexec("runuser -u postgres -- dropdb --if-exists plain; rm -f /var/tmp/plain.dump")
    return {
        "db_bytes": int(psql(f"SELECT pg_database_size('{APP}')")),
        "backup_s": statistics.median(backup),
        "backup_bytes": statistics.median(sizes),
        "drill_s": statistics.median(drill),
        "pg_dump_s": statistics.median(dump),
        "pg_restore_s": statistics.median(restore),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100", help="comma-separated database sizes in MiB (default: 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the table shows medians (default: 3)")
    parser.add_argument("--image", default="operativos-systemd:bookworm", help="container image")
    parser.add_argument("--destroy", action="store_true", help="remove the container and exit")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    if args.destroy:
        sh(["docker", "rm", "--force", CONTAINER])
        return 0
    try:
        start_container(args.image)
        converge()
        results = []
        for size in sorted(int(s) for s in args.sizes.split(",")):
            log.info("filling the database to about %d MiB", size)
            fill(size)
            results.append({"target_mib": size, **measure(args.runs)})
    except subprocess.CalledProcessError as error:
        log.error("command failed (%d): %s\n%s%s", error.returncode, error.cmd, error.stdout, error.stderr)
        return 1
    print(json.dumps(results, indent=2))
    print("| Data | Backup set | Backup | Drill | pg_dump | pg_restore | Backup / pg_dump | Drill / restore |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['db_bytes'] / 2**20:.0f} MiB | {r['backup_bytes'] / 2**20:.1f} MiB | {r['backup_s']:.1f} s "
            f"| {r['drill_s']:.1f} s | {r['pg_dump_s']:.1f} s | {r['pg_restore_s']:.1f} s "
            f"| {r['backup_s'] / r['pg_dump_s']:.2f} | {r['drill_s'] / r['pg_restore_s']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
