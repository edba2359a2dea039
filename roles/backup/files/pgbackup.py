#!/usr/bin/python3
"""Back up a PostgreSQL database, restore-drill its backups and restore one into a side database.

Settings come from a JSON file that the backup role writes. Each subcommand logs its start, each step, its
result and every error with the backup id, and exits 1 on any failure. Subcommands and the user they run as
(<backup user> is the role's backup_user, a PostgreSQL login role in pg_read_all_data only; postgres and root
read the backup sets through the <backup user> group):

  backup        (<backup user>) write one backup set, publish it atomically, apply retention, copy it off the host
  prune         (<backup user>) apply retention only
  copy          (<backup user>) copy a backup set to the backup host and verify it there
  list          (<backup user>, postgres or root) print the published backup sets as JSON
  verify        (<backup user>, postgres or root) check a set's sha256 sums and its dump's table of contents
  drill         (root) restore a set into a scratch database, check it, drop it, record the result and metrics
  metrics       (root) write the newest published set's time, duration and size as textfile metrics
  drill-restore (postgres) the database part of a drill, which leaves the scratch database in place
  drill-cleanup (postgres) drop a drill's scratch database and role
  restore-side  (postgres) restore a set with owners and privileges into a side database for a disaster recovery
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

log = logging.getLogger("pgbackup")

SET_ID = re.compile(r"^\d{8}T\d{6}Z$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST = "manifest.json"
GLOBALS = "globals.sql"
# sha256sum(1) format, for `sha256sum --check` by people and older tools; the manifest is the reference.
SUMS = "SHA256SUMS"
SOCKET_DIR = "/var/run/postgresql"


class BackupError(Exception):
    """A step failed; the message names the step, the backup id and the cause."""


@dataclass
class Config:
    """Settings written by the backup role (see roles/backup/templates/etc/backup/config.json.j2)."""

    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def backup_dir(self) -> Path:
        return Path(self.raw["backup_dir"])

    @property
    def db(self) -> str:
        return self.raw["db_name"]


# ---------------------------------------------------------------------------------------------------------
# Helpers


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def run(
    argv: list[str], step: str, *, user: str | None = None, env: dict[str, str] | None = None, relay: bool = False
) -> str:
    """Run a command, return its stdout, and raise BackupError with its stderr when it exits non-zero.

    With relay, the command's stderr (its log) is written to this process's stderr, so it reaches the journal.
    """
    log.debug("running %s", " ".join(argv))
    kwargs: dict[str, Any] = {}
    if user is not None and os.geteuid() == 0 and pwd.getpwnam(user).pw_uid != 0:
        entry = pwd.getpwnam(user)
        # The user's groups from /etc/group: postgres reads the backup sets through the backup user's group.
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": groups}
    # English messages whatever the host's locale, so logs and drill results read the same everywhere.
    full_env = dict(os.environ) | {"LC_MESSAGES": "C"} | (env or {})
    if user is not None:
        full_env["HOME"] = pwd.getpwnam(user).pw_dir
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=full_env, **kwargs)
    except OSError as error:
        raise BackupError(f"{step}: cannot run {argv[0]}: {error}") from error
    if relay and done.stderr:
        sys.stderr.write(done.stderr)
        sys.stderr.flush()
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # The tool's own subcommands log their cause on ERROR lines; other programs print it last.
        errors = [line.removeprefix("ERROR ") for line in lines if line.startswith("ERROR ")]
        detail = " | ".join(errors or lines[-5:])
        raise BackupError(f"{step}: {Path(argv[0]).name} exited with {done.returncode}: {detail}")
    return done.stdout


def connect(database: str, port: int) -> Any:
    """Connect as the calling system user over the local socket (peer authentication)."""
    return psycopg2.connect(dbname=database, host=SOCKET_DIR, port=port, application_name="pgbackup")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: object, mode: int = 0o640) -> None:
    """Write JSON into a temporary file beside `path` and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.chmod(mode)
    tmp.replace(path)


def data_files(folder: Path) -> list[Path]:
    """Return every file below a backup set except the manifest and SHA256SUMS, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and str(p.relative_to(folder)) not in (MANIFEST, SUMS))


def dump_path(folder: Path, manifest: dict[str, Any]) -> Path:
    return folder / manifest["dump"]["path"]


def pg_port(cfg: Config) -> int:
    return int(cfg["db_port"])


def table_counts(cursor: Any, schemas: list[str]) -> dict[str, int]:
    """Count the rows of every ordinary and partitioned table in the schemas."""
    cursor.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 1, 2",
        (schemas,),
    )
    counts = {}
    for schema, table in cursor.fetchall():
        cursor.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
        counts[f"{schema}.{table}"] = cursor.fetchone()[0]
    return counts


def role_search_path(cursor: Any, role: str, database: str) -> list[str]:
    """Return the search_path set with ALTER ROLE role IN DATABASE database, or [] when none is set."""
    cursor.execute(
        "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = %s AND d.datname = %s",
        (role, database),
    )
    for (setting,) in cursor.fetchall():
        name, _, value = setting.partition("=")
        if name == "search_path":
            return [part.strip().strip('"') for part in value.split(",") if part.strip()]
    return []


def set_search_path(cursor: Any, role: str, database: str, search_path: list[str]) -> None:
    cursor.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
            sql.Identifier(role),
            sql.Identifier(database),
            sql.SQL(", ").join(sql.Identifier(part) for part in search_path),
        )
    )


def role_exists(cursor: Any, role: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return cursor.fetchone() is not None


def database_exists(cursor: Any, database: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    return cursor.fetchone() is not None


# ---------------------------------------------------------------------------------------------------------
# Backup sets


def published_sets(cfg: Config) -> list[Path]:
    """Return the published backup sets, oldest first. A set is published when its manifest exists."""
    if not cfg.backup_dir.is_dir():
        return []
    return sorted(p for p in cfg.backup_dir.iterdir() if SET_ID.match(p.name) and (p / MANIFEST).is_file())


def find_set(cfg: Config, backup_id: str) -> Path:
    sets = published_sets(cfg)
    if backup_id == "latest":
        if not sets:
            raise BackupError(f"no published backup set in {cfg.backup_dir}")
        return sets[-1]
    if not SET_ID.match(backup_id):
        raise BackupError(f"invalid backup id {backup_id!r}: expected YYYYMMDDTHHMMSSZ or 'latest'")
    folder = cfg.backup_dir / backup_id
    if folder not in sets:
        raise BackupError(f"backup set {backup_id} not found in {cfg.backup_dir}")
    return folder


def load_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"backup {folder.name}: cannot read {MANIFEST}: {error}") from error


def read_release(cfg: Config) -> str:
    try:
        return Path(cfg["revision_file"]).read_text(encoding="utf-8").strip() or "unknown"
    except OSError as error:
        log.info("release id not readable from %s (%s); recording 'unknown'", cfg["revision_file"], error)
        return "unknown"


def tool_version(tool: str) -> str:
    return run([tool, "--version"], f"read the {tool} version").strip()


def dump_database(cfg: Config, work: Path, snapshot: str) -> dict[str, Any]:
    """Run pg_dump into `work` from the exported snapshot and return the manifest's dump entry."""
    db = cfg.db
    argv = ["pg_dump", f"--snapshot={snapshot}", "--no-password", f"--port={pg_port(cfg)}", f"--host={SOCKET_DIR}"]
    if cfg["dump_format"] == "directory":
        name = f"{db}.dir"
        argv += ["--format=directory", f"--jobs={int(cfg['dump_jobs'])}", f"--file={work / name}"]
    else:
        name = f"{db}.dump"
        argv += ["--format=custom", f"--file={work / name}"]
    run([*argv, "--", db], "pg_dump")
    return {"format": cfg["dump_format"], "path": name, "jobs": int(cfg["dump_jobs"])}


def dump_from_snapshot(cfg: Config, work: Path, stamp: str) -> dict[str, Any]:
    """Count rows and run pg_dump in one exported snapshot, so the counts describe exactly the dumped data."""
    conn = connect(cfg.db, pg_port(cfg))
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_export_snapshot(), current_setting('server_version'), pg_database_size(%s)", (cfg.db,)
            )
            snapshot, server_version, size = cur.fetchone()
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (cfg.db,))
            owner = cur.fetchone()[0]
            search_path = role_search_path(cur, owner, cfg.db)
            log.info("backup %s: counting rows in schemas %s", stamp, ", ".join(cfg["schemas"]))
            counts = table_counts(cur, cfg["schemas"])
            log.info("backup %s: running pg_dump (%s format) from snapshot %s", stamp, cfg["dump_format"], snapshot)
            dump = dump_database(cfg, work, snapshot)
    finally:
        conn.close()
    return {
        "owner": owner,
        "search_path": search_path,
        "server_version": server_version,
        "database_size_bytes": size,
        "dump": dump,
        "row_counts": counts,
    }


def dump_globals(cfg: Config, work: Path, stamp: str) -> None:
    """Dump roles and tablespaces without password hashes, which only a superuser may read (pg_authid).

    A restore recreates missing roles without a password; the postgresql role sets the app role's password.
    """
    log.info("backup %s: running pg_dumpall --globals-only --no-role-passwords", stamp)
    globals_file = work / GLOBALS
    argv = [
        "pg_dumpall",
        "--globals-only",
        "--no-role-passwords",
        "--no-password",
        f"--port={pg_port(cfg)}",
        f"--host={SOCKET_DIR}",
    ]
    run([*argv, f"--file={globals_file}"], "pg_dumpall --globals-only")


def publish(cfg: Config, work: Path, final: Path) -> None:
    """Flush every file and rename the temporary folder to its final name in one step.

    Folders get mode 0750 and files 0640 whatever the caller's umask: the owner's group (postgres is a member)
    reads the sets for restores, and other users read nothing.
    """
    for path in [work, *work.rglob("*")]:
        path.chmod(0o750 if path.is_dir() else 0o640)
    for path in data_files(work):
        fsync_path(path)
    fsync_path(work / MANIFEST)
    fsync_path(work)
    work.rename(final)
    fsync_path(cfg.backup_dir)


def backup(cfg: Config, kind: str, label: str = "") -> Path:
    """Write one backup set into a temporary folder, check it, and rename it to its final name."""
    started = utc_now()
    stamp = started.strftime(STAMP_FORMAT)
    work = cfg.backup_dir / f".partial-{stamp}"
    final = cfg.backup_dir / stamp
    log.info("backup %s of database %s started (kind %s)", stamp, cfg.db, kind)
    if final.exists() or work.exists():
        raise BackupError(f"backup {stamp}: {final} or {work} already exists; start the next backup a second later")
    published = False
    try:
        work.mkdir(mode=0o700)
        state = dump_from_snapshot(cfg, work, stamp)
        dump_globals(cfg, work, stamp)

        log.info("backup %s: checking the dump with pg_restore --list", stamp)
        listing = run(["pg_restore", "--list", str(work / state["dump"]["path"])], "pg_restore --list")
        if "TABLE DATA" not in listing and any(state["row_counts"].values()):
            raise BackupError(f"backup {stamp}: pg_restore --list shows no TABLE DATA entry")

        manifest = {
            "format_version": 1,
            "id": stamp,
            "kind": kind,
            "label": label,
            "host": socket.getfqdn(),
            "created": iso(started),
            "finished": iso(utc_now()),
            "database": cfg.db,
            "schemas": cfg["schemas"],
            "pg_dump_version": tool_version("pg_dump"),
            "release": read_release(cfg),
            "globals": GLOBALS,
            **state,
            "files": {str(p.relative_to(work)): sha256_file(p) for p in data_files(work)},
        }
        sums = "".join(f"{digest}  {name}\n" for name, digest in sorted(manifest["files"].items()))
        (work / SUMS).write_text(sums, encoding="utf-8")
        write_json_atomic(work / MANIFEST, manifest)
        publish(cfg, work, final)
        published = True
    except (OSError, psycopg2.Error) as error:
        raise BackupError(f"backup {stamp}: {type(error).__name__}: {str(error).strip()}") from error
    finally:
        if not published and work.exists():
            log.error("backup %s failed; removing %s", stamp, work)
            shutil.rmtree(work, ignore_errors=True)
    total = sum(p.stat().st_size for p in data_files(final))
    log.info("backup %s published at %s (%d bytes, %d tables)", stamp, final, total, len(state["row_counts"]))
    return final


# ---------------------------------------------------------------------------------------------------------
# Retention


def drill_results(cfg: Config) -> list[dict[str, Any]]:
    results = []
    folder = Path(cfg["drill"]["result_dir"])
    if not folder.is_dir():
        return results
    for path in sorted(folder.glob("*.json")):
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            log.warning("skipping unreadable drill result %s: %s", path, error)
    return results


def newest_drilled(cfg: Config) -> str | None:
    """Return the id of the newest backup set whose most recent restore drill passed.

    A set that passed once and failed a later drill (its files changed since) no longer counts.
    """
    latest: dict[str, dict[str, Any]] = {}
    for result in drill_results(cfg):
        backup_id = result.get("backup_id")
        if backup_id and result.get("started", "") >= latest.get(backup_id, {}).get("started", ""):
            latest[backup_id] = result
    passed = [backup_id for backup_id, result in latest.items() if result.get("passed")]
    return max(passed) if passed else None


def prune(cfg: Config) -> list[str]:
    """Delete sets beyond the newest `keep` or older than `max_age_days`, except the two protected ones."""
    sets = published_sets(cfg)
    if not sets:
        return []
    keep = int(cfg["keep"])
    max_age_days = int(cfg["max_age_days"])
    protected = {sets[-1].name}
    # TODO: read the drill results of a drill host elsewhere (backup_drill_host); until then only drills on
    # this host protect a set here.
    drilled = newest_drilled(cfg)
    if drilled:
        protected.add(drilled)
    now = utc_now()
    removed = []
    for index, folder in enumerate(reversed(sets)):
        created = dt.datetime.strptime(folder.name, STAMP_FORMAT).replace(tzinfo=dt.UTC)
        too_many = index >= keep
        too_old = max_age_days > 0 and now - created > dt.timedelta(days=max_age_days)
        if folder.name in protected or not (too_many or too_old):
            continue
        reason = f"beyond the newest {keep}" if too_many else f"older than {max_age_days} days"
        log.info("retention: removing backup %s (%s)", folder.name, reason)
        shutil.rmtree(folder)
        removed.append(folder.name)
    # Leftovers of runs that were killed before their cleanup ran (for example by SIGKILL).
    for leftover in cfg.backup_dir.glob(".partial-*"):
        log.warning("retention: removing the unfinished set %s", leftover.name)
        shutil.rmtree(leftover, ignore_errors=True)
    log.info(
        "retention: %d sets kept, %d removed, protected %s",
        len(sets) - len(removed),
        len(removed),
        ", ".join(sorted(protected)),
    )
    return removed


# ---------------------------------------------------------------------------------------------------------
# Copy to the backup host


def ssh_command(copy: dict[str, Any]) -> str:
    return (
        f"ssh -i {copy['key_file']} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={copy['known_hosts_file']} -o ConnectTimeout=20 -p {int(copy['port'])}"
    )


def rsync_differences(copy: dict[str, Any], folder: Path, exclude_manifest: bool) -> list[str]:
    """Compare a local set with its remote copy by whole-file checksum; return the differing paths."""
    argv = [
        "rsync",
        "--recursive",
        "--checksum",
        "--dry-run",
        "--itemize-changes",
        "--out-format=%i %n",
        "-e",
        ssh_command(copy),
    ]
    if exclude_manifest:
        argv.append(f"--exclude={MANIFEST}")
    output = run([*argv, f"{folder}/", f"{copy['user']}@{copy['host']}:{folder.name}/"], "rsync checksum check")
    return [line for line in output.splitlines() if line and not line.startswith(".d")]


def copy_set(cfg: Config, folder: Path) -> None:
    """Copy a set with rsync over ssh; the manifest goes last, so a copy without manifest.json is incomplete."""
    copy = cfg["copy"]
    target = f"{copy['user']}@{copy['host']}"
    log.info("copy %s: sending to %s", folder.name, target)
    base = ["rsync", "--recursive", "--times", "--chmod=D0750,F0640", "--delay-updates", "-e", ssh_command(copy)]
    run([*base, f"--exclude={MANIFEST}", f"{folder}/", f"{target}:{folder.name}/"], "rsync data files")
    differing = rsync_differences(copy, folder, exclude_manifest=True)
    if differing:
        raise BackupError(f"copy {folder.name}: checksums differ on {target} for {', '.join(differing)}")
    run([*base, f"{folder}/{MANIFEST}", f"{target}:{folder.name}/{MANIFEST}"], "rsync manifest")
    differing = rsync_differences(copy, folder, exclude_manifest=False)
    if differing:
        raise BackupError(f"copy {folder.name}: checksums differ on {target} for {', '.join(differing)}")
    log.info("copy %s: every file arrived on %s with a matching checksum", folder.name, target)


# ---------------------------------------------------------------------------------------------------------
# Verification and restore


def verify_set(folder: Path) -> dict[str, Any]:
    """Check the sha256 sum of every file in the manifest and the dump's table of contents."""
    manifest = load_manifest(folder)
    listed = set(manifest["files"])
    present = {str(p.relative_to(folder)) for p in data_files(folder)}
    if listed != present:
        raise BackupError(
            f"backup {folder.name}: files differ from the manifest: missing {sorted(listed - present)}, "
            f"unexpected {sorted(present - listed)}"
        )
    for name, expected in sorted(manifest["files"].items()):
        actual = sha256_file(folder / name)
        if actual != expected:
            raise BackupError(f"backup {folder.name}: sha256 mismatch on {name}: expected {expected}, got {actual}")
    log.info("backup %s: sha256 sums of %d files match", folder.name, len(listed))
    run(["pg_restore", "--list", str(dump_path(folder, manifest))], f"backup {folder.name}: pg_restore --list")
    log.info("backup %s: pg_restore --list reads the dump", folder.name)
    return manifest


def check_restored(cfg: Config, database: str, manifest: dict[str, Any], freshness: bool) -> None:
    """Compare row counts with the manifest, run the sanity queries and, if asked, the freshness checks."""
    conn = connect(database, pg_port(cfg))
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            if manifest["search_path"]:
                cur.execute(
                    sql.SQL("SET search_path = {}").format(
                        sql.SQL(", ").join(sql.Identifier(p) for p in manifest["search_path"])
                    )
                )
            counts = table_counts(cur, manifest["schemas"])
            expected = manifest["row_counts"]
            wrong = {
                t: (expected.get(t), counts.get(t))
                for t in set(expected) | set(counts)
                if expected.get(t) != counts.get(t)
            }
            if wrong:
                detail = ", ".join(f"{t}: manifest {e}, restored {r}" for t, (e, r) in sorted(wrong.items()))
                raise BackupError(f"backup {manifest['id']}: row counts differ from the manifest: {detail}")
            log.info("backup %s: row counts of %d tables match the manifest", manifest["id"], len(counts))

            for query in cfg["drill"]["sanity_queries"]:
                cur.execute(query["sql"])
                row = cur.fetchone()
                if not row or row[0] is not True:
                    raise BackupError(f"backup {manifest['id']}: sanity query '{query['name']}' returned {row}")
                log.info("backup %s: sanity query '%s' passed", manifest["id"], query["name"])

            if freshness:
                check_freshness(cur, cfg, manifest)
    finally:
        conn.close()


def check_freshness(cur: Any, cfg: Config, manifest: dict[str, Any]) -> None:
    """Fail when the newest value of a timestamp column is older than the backup by more than its limit."""
    created = parse_iso(manifest["created"])
    for rule in cfg["drill"]["freshness"]:
        schema, _, table = rule["table"].partition(".")
        cur.execute(
            sql.SQL("SELECT max({}) FROM {}.{}").format(
                sql.Identifier(rule["column"]), sql.Identifier(schema), sql.Identifier(table)
            )
        )
        newest = cur.fetchone()[0]
        where = f"{rule['table']}.{rule['column']}"
        if newest is None:
            raise BackupError(f"backup {manifest['id']}: freshness: {where} has no rows")
        lag = created - newest
        limit = dt.timedelta(seconds=int(rule["max_lag_seconds"]))
        if lag > limit:
            raise BackupError(
                f"backup {manifest['id']}: freshness: newest {where} is {iso(newest)}, {lag} before the backup "
                f"({limit} allowed)"
            )
        log.info("backup %s: freshness of %s passed (newest %s)", manifest["id"], where, iso(newest))


def drill_restore(cfg: Config, backup_id: str, scratch: str, role: str) -> dict[str, Any]:
    """Restore a set into a new scratch database owned by a new drill role, and check it. Runs as postgres."""
    if scratch == cfg.db:
        raise BackupError(f"scratch database {scratch!r} is the live database; choose another drill.scratch_db")
    folder = find_set(cfg, backup_id)
    manifest = verify_set(folder)
    password = os.environ.get("PGBACKUP_DRILL_PASSWORD", "")
    conn = connect("postgres", pg_port(cfg))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if database_exists(cur, scratch):
                log.warning("drill: dropping the scratch database %s left by an earlier drill", scratch)
                cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(scratch)))
            if not role_exists(cur, role):
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(role))
                )
            if password:
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (password,))
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(scratch), sql.Identifier(role)
                )
            )
            log.info("drill %s: created scratch database %s owned by %s", folder.name, scratch, role)
    finally:
        conn.close()

    started = time.monotonic()
    run(
        [
            "pg_restore",
            "--exit-on-error",
            "--no-owner",
            "--no-acl",
            f"--role={role}",
            f"--port={pg_port(cfg)}",
            f"--host={SOCKET_DIR}",
            f"--jobs={int(cfg['restore_jobs'])}",
            f"--dbname={scratch}",
            str(dump_path(folder, manifest)),
        ],
        f"drill {folder.name}: pg_restore",
    )
    log.info("drill %s: pg_restore finished in %.1f s", folder.name, time.monotonic() - started)

    conn = connect(scratch, pg_port(cfg))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if manifest["search_path"]:
                set_search_path(cur, role, scratch, manifest["search_path"])
                if role_exists(cur, manifest["owner"]):
                    set_search_path(cur, manifest["owner"], scratch, manifest["search_path"])
                log.info("drill %s: search_path %s applied in %s", folder.name, manifest["search_path"], scratch)
    finally:
        conn.close()
    check_restored(cfg, scratch, manifest, freshness=True)
    return manifest


def drill_cleanup(cfg: Config, scratch: str, role: str) -> None:
    if scratch == cfg.db:
        raise BackupError(f"refusing to drop {scratch!r}: it is the live database")
    conn = connect("postgres", pg_port(cfg))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    finally:
        conn.close()
    log.info("drill: dropped scratch database %s and role %s", scratch, role)


GLOBAL_ROLE_LINE = re.compile(r'^(CREATE ROLE|ALTER ROLE) ("?)([^\s"]+)\2( WITH .*)?;$')


def recreate_missing_roles(cfg: Config, globals_file: Path) -> list[str]:
    """Run the CREATE ROLE and ALTER ROLE ... WITH lines of the globals dump for roles the cluster lacks."""
    statements: dict[str, list[str]] = {}
    for line in globals_file.read_text(encoding="utf-8").splitlines():
        match = GLOBAL_ROLE_LINE.match(line)
        if match:
            statements.setdefault(match.group(3), []).append(line)
    conn = connect("postgres", pg_port(cfg))
    created = []
    try:
        with conn, conn.cursor() as cur:
            for role, lines in statements.items():
                if role.startswith("pg_") or role_exists(cur, role):
                    continue
                for line in lines:
                    cur.execute(line)
                created.append(role)
    finally:
        conn.close()
    if created:
        log.info("recreated roles missing from the cluster: %s", ", ".join(created))
    return created


def restore_side(cfg: Config, backup_id: str, side: str) -> dict[str, Any]:
    """Restore a set with its owners and privileges into a new side database and check it. Runs as postgres."""
    if side == cfg.db:
        raise BackupError(f"side database {side!r} is the live database; choose another name")
    folder = find_set(cfg, backup_id)
    manifest = verify_set(folder)
    created_roles = recreate_missing_roles(cfg, folder / manifest["globals"])
    conn = connect("postgres", pg_port(cfg))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if database_exists(cur, side):
                raise BackupError(f"side database {side} already exists; drop it or choose another name")
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(side), sql.Identifier(manifest["owner"])
                )
            )
    finally:
        conn.close()
    log.info("restore %s: created side database %s", folder.name, side)
    started = time.monotonic()
    run(
        [
            "pg_restore",
            "--exit-on-error",
            f"--port={pg_port(cfg)}",
            f"--host={SOCKET_DIR}",
            f"--jobs={int(cfg['restore_jobs'])}",
            f"--dbname={side}",
            str(dump_path(folder, manifest)),
        ],
        f"restore {folder.name}: pg_restore",
    )
    log.info("restore %s: pg_restore finished in %.1f s", folder.name, time.monotonic() - started)
    conn = connect(side, pg_port(cfg))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if manifest["search_path"]:
                set_search_path(cur, manifest["owner"], side, manifest["search_path"])
    finally:
        conn.close()
    check_restored(cfg, side, manifest, freshness=False)
    return {
        "backup_id": folder.name,
        "side_database": side,
        "owner": manifest["owner"],
        "created_roles": created_roles,
        "release": manifest["release"],
    }


# ---------------------------------------------------------------------------------------------------------
# Drill orchestration (root)


def run_app_checks(cfg: Config, url: str, backup_id: str) -> None:
    """Run the deployed release's manage.py migrate --check and check against the scratch database."""
    manage = cfg["drill"]["manage"]
    if not cfg["drill"]["app_checks"]:
        log.info(
            "drill %s: application checks are off (backup_drill_app_checks), so manage.py migrate --check and "
            "check do not run",
            backup_id,
        )
        return
    if not Path(manage).exists():
        raise BackupError(
            f"drill {backup_id}: {manage} not found; deploy the application on this host or turn the "
            "drill's application checks off"
        )
    for args in (["migrate", "--check", "--noinput"], ["check"]):
        log.info("drill %s: running manage.py %s against the scratch database", backup_id, " ".join(args))
        run(
            [manage, *args],
            f"drill {backup_id}: manage.py {' '.join(args)}",
            user=cfg["app_user"],
            env={"MANAGE_DATABASE_URL": url},
        )


def metric_prefix(cfg: Config) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", cfg["app_name"]) + "_backup"


def write_textfile(cfg: Config, name: str, lines: list[str]) -> None:
    """Replace <textfile_dir>/<name>.prom in one rename, so node_exporter never reads half a file."""
    folder = Path(cfg["drill"]["textfile_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.prom.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(folder / f"{name}.prom")


def write_metrics(cfg: Config, result: dict[str, Any]) -> None:
    prefix = metric_prefix(cfg) + "_drill"
    finished = parse_iso(result["finished"]).timestamp()
    lines = [
        f"# HELP {prefix}_success 1 when the last restore drill passed, else 0.",
        f"# TYPE {prefix}_success gauge",
        f"{prefix}_success {1 if result['passed'] else 0}",
        f"# HELP {prefix}_timestamp_seconds Time the last restore drill finished.",
        f"# TYPE {prefix}_timestamp_seconds gauge",
        f"{prefix}_timestamp_seconds {finished:.0f}",
    ]
    if result.get("rpo_seconds") is not None:
        lines += [
            f"# HELP {prefix}_rpo_seconds Age of the drilled backup when the drill started (recovery point).",
            f"# TYPE {prefix}_rpo_seconds gauge",
            f"{prefix}_rpo_seconds {result['rpo_seconds']:.0f}",
        ]
    if result["passed"]:
        lines += [
            f"# HELP {prefix}_last_success_timestamp_seconds Time the last passing restore drill finished.",
            f"# TYPE {prefix}_last_success_timestamp_seconds gauge",
            f"{prefix}_last_success_timestamp_seconds {finished:.0f}",
            f"# HELP {prefix}_rto_seconds Restore and check time of the last passing drill (recovery time).",
            f"# TYPE {prefix}_rto_seconds gauge",
            f"{prefix}_rto_seconds {result['rto_seconds']:.1f}",
        ]
    write_textfile(cfg, prefix, lines)


def write_backup_metrics(cfg: Config) -> None:
    """Write the newest published set's finish time, duration and size, and the number of sets.

    A folder without a published set writes only the set count (0), so "no backup yet" shows as a missing
    last-success metric rather than an old one.
    """
    prefix = metric_prefix(cfg)
    sets = published_sets(cfg)
    lines = [
        f"# HELP {prefix}_sets Number of published backup sets on this host.",
        f"# TYPE {prefix}_sets gauge",
        f"{prefix}_sets {len(sets)}",
    ]
    if sets:
        newest = sets[-1]
        manifest = load_manifest(newest)
        created = parse_iso(manifest["created"]).timestamp()
        finished = parse_iso(manifest["finished"]).timestamp()
        size = sum(p.stat().st_size for p in data_files(newest))
        lines += [
            f"# HELP {prefix}_last_success_timestamp_seconds Time the newest published backup set was finished.",
            f"# TYPE {prefix}_last_success_timestamp_seconds gauge",
            f"{prefix}_last_success_timestamp_seconds {finished:.0f}",
            f"# HELP {prefix}_duration_seconds Time the newest published backup set took to write and check.",
            f"# TYPE {prefix}_duration_seconds gauge",
            f"{prefix}_duration_seconds {finished - created:.1f}",
            f"# HELP {prefix}_size_bytes Size of the newest published backup set's data files.",
            f"# TYPE {prefix}_size_bytes gauge",
            f"{prefix}_size_bytes {size}",
        ]
        log.info("metrics of backup %s written (%d bytes, %d sets)", newest.name, size, len(sets))
    else:
        log.info("no published backup set in %s, so the metrics contain only the set count", cfg.backup_dir)
    write_textfile(cfg, prefix, lines)


def drill(cfg: Config, backup_id: str) -> dict[str, Any]:
    """Run a whole restore drill as root and record its result; return the result."""
    if os.geteuid() != 0:
        raise BackupError("drill must run as root: it runs pg_restore as postgres and manage.py as the app user")
    started = utc_now()
    drill_cfg = cfg["drill"]
    scratch, role = drill_cfg["scratch_db"], drill_cfg["role"]
    result: dict[str, Any] = {
        "started": iso(started),
        "backup_id": None,
        "passed": False,
        "reason": "",
        "rpo_seconds": None,
        "rto_seconds": None,
        "scratch_database": scratch,
        "host": socket.getfqdn(),
        "app_checks": bool(drill_cfg["app_checks"]),
    }
    try:
        folder = find_set(cfg, backup_id)
        result["backup_id"] = folder.name
        log.info("drill of backup %s started (scratch database %s)", folder.name, scratch)
        manifest = load_manifest(folder)
        result["release"] = manifest.get("release")
        result["rpo_seconds"] = (started - parse_iso(manifest["created"])).total_seconds()
        password = secrets.token_urlsafe(24)
        me = [sys.executable, os.path.abspath(__file__), "--config", cfg["config_file"]]
        clock = time.monotonic()
        try:
            run(
                [*me, "drill-restore", folder.name, "--scratch", scratch, "--role", role],
                "restore into the scratch database",
                user="postgres",
                env={"PGBACKUP_DRILL_PASSWORD": password},
                relay=True,
            )
            url = f"postgres://{role}:{password}@{cfg['db_host']}:{pg_port(cfg)}/{scratch}"
            run_app_checks(cfg, url, folder.name)
        finally:
            result["rto_seconds"] = time.monotonic() - clock
            run(
                [*me, "drill-cleanup", "--scratch", scratch, "--role", role],
                "drop the scratch database",
                user="postgres",
                relay=True,
            )
        result["passed"] = True
        result["reason"] = "every check passed"
    except BackupError as error:
        result["reason"] = str(error)
        log.error("drill of backup %s failed: %s", result["backup_id"], error)
    result["finished"] = iso(utc_now())
    record_drill(cfg, result)
    return result


def record_drill(cfg: Config, result: dict[str, Any]) -> None:
    folder = Path(cfg["drill"]["result_dir"])
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    name = parse_iso(result["started"]).strftime(STAMP_FORMAT)
    write_json_atomic(folder / f"{name}.json", result)
    write_json_atomic(folder / "last.json", result)
    for old in sorted(folder.glob("*.json"))[: -int(cfg["drill"]["results_kept"])]:
        old.unlink()
    write_metrics(cfg, result)
    log.info(
        "drill of backup %s %s: RPO %s s, RTO %s s; %s",
        result["backup_id"],
        "passed" if result["passed"] else "FAILED",
        None if result["rpo_seconds"] is None else round(result["rpo_seconds"]),
        None if result["rto_seconds"] is None else round(result["rto_seconds"], 1),
        result["reason"],
    )


# ---------------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="JSON settings file written by the backup role")
    parser.add_argument("--verbose", action="store_true", help="log every command that runs")
    sub = parser.add_subparsers(dest="command", required=True)
    backup_parser = sub.add_parser("backup", help="write, publish, prune and copy one backup set")
    backup_parser.add_argument(
        "--kind",
        default="scheduled",
        choices=["scheduled", "manual", "safety"],
        help="why the backup was taken, recorded in the manifest",
    )
    backup_parser.add_argument(
        "--label",
        default="",
        help="free text recorded in the manifest, for example pre-deploy-<release id> before a deploy",
    )
    backup_parser.add_argument("--no-prune", action="store_true", help="skip retention after this backup")
    backup_parser.add_argument("--no-copy", action="store_true", help="skip the copy to the backup host")
    sub.add_parser("prune", help="apply retention")
    sub.add_parser("list", help="print the published backup sets as JSON")
    sub.add_parser("metrics", help="write the newest set's textfile metrics for node_exporter")
    for name in ("copy", "verify", "drill"):
        command = sub.add_parser(name, help=f"{name} one backup set")
        command.add_argument("backup", nargs="?", default="latest", help="backup id, or 'latest' (default)")
    for name in ("drill-restore", "drill-cleanup"):
        command = sub.add_parser(name, help=f"the {name.split('-')[1]} step of a drill")
        if name == "drill-restore":
            command.add_argument("backup", help="backup id")
        command.add_argument("--scratch", required=True, help="scratch database name")
        command.add_argument("--role", required=True, help="role that owns the scratch database")
    side = sub.add_parser("restore-side", help="restore a set into a side database with owners and privileges")
    side.add_argument("backup", help="backup id, or 'latest'")
    side.add_argument("--side", required=True, help="name of the side database to create")
    return parser.parse_args(argv)


def dispatch(cfg: Config, args: argparse.Namespace) -> int:
    """Run one subcommand; return its exit status."""
    if args.command == "backup":
        folder = backup(cfg, args.kind, args.label)
        if not args.no_prune:
            prune(cfg)
        if cfg["copy"]["enabled"] and not args.no_copy:
            copy_set(cfg, folder)
        print(json.dumps({"backup_id": folder.name, "path": str(folder)}))
    elif args.command == "prune":
        prune(cfg)
    elif args.command == "list":
        sets = [{"backup_id": p.name, "path": str(p), **load_manifest(p)} for p in published_sets(cfg)]
        print(json.dumps(sets, default=str))
    elif args.command == "metrics":
        write_backup_metrics(cfg)
    elif args.command == "copy":
        copy_set(cfg, find_set(cfg, args.backup))
    elif args.command == "verify":
        verify_set(find_set(cfg, args.backup))
    elif args.command == "drill":
        result = drill(cfg, args.backup)
        print(json.dumps(result))
        return 0 if result["passed"] else 1
    elif args.command == "drill-restore":
        drill_restore(cfg, args.backup, args.scratch, args.role)
    elif args.command == "drill-cleanup":
        drill_cleanup(cfg, args.scratch, args.role)
    elif args.command == "restore-side":
        print(json.dumps(restore_side(cfg, args.backup, args.side)))
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        format="%(levelname)s %(message)s", level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr
    )
    try:
        cfg = Config(json.loads(args.config.read_text(encoding="utf-8")) | {"config_file": str(args.config)})
    except (OSError, ValueError) as error:
        log.error("cannot read the settings file %s: %s", args.config, error)
        return 1
    log.info("%s started", args.command)
    try:
        status = dispatch(cfg, args)
    except BackupError as error:
        log.error("%s failed: %s", args.command, error)
        return 1
    except psycopg2.Error as error:
        log.error("%s failed: PostgreSQL error: %s", args.command, str(error).strip())
        return 1
    if status != 0:
        return status
    log.info("%s finished", args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
