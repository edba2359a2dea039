"""Copies on the backup host: complete, matching their manifest, and written through a restricted key."""

import json

import pytest

from conftest import APP, BACKUP_DIR, DB_HOST, manifest, published_sets

COPIES = f"/var/backups/{APP}-copies/{DB_HOST}"
KEY = f"/etc/{APP}-backup/copy_ed25519"


@pytest.fixture(scope="module")
def newest(db) -> str:
    """Return the newest set of a timer or manual run; restore.yml's safety backups are not copied."""
    names = [name for name in published_sets(db) if not name.startswith(".")]
    return [name for name in names if manifest(db, name)["kind"] != "safety"][-1]


def test_newest_set_copied(store, newest):
    assert store.file(f"{COPIES}/{newest}/manifest.json").exists


def test_copy_matches_manifest_checksums(store, newest):
    data = json.loads(store.file(f"{COPIES}/{newest}/manifest.json").content_string)
    for name, digest in data["files"].items():
        assert store.run("sha256sum %s", f"{COPIES}/{newest}/{name}").stdout.split()[0] == digest, name


def test_copy_matches_local_manifest(db, store, newest):
    local = db.file(f"{BACKUP_DIR}/{newest}/manifest.json").content_string
    assert store.file(f"{COPIES}/{newest}/manifest.json").content_string == local


def test_copy_log_reports_verification(db, newest):
    log = db.run("journalctl --no-pager --unit %s", f"{APP}-backup.service").stdout
    assert f"copy {newest}: every file arrived on" in log


def test_copy_key_runs_no_shell(db):
    ssh = (
        "runuser -u operativos_backup -- ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o UserKnownHostsFile=/etc/operativos-backup/known_hosts %s id"
    )
    result = db.run(ssh, KEY, f"{APP}-backup@operativos-backup-store")
    assert "uid=" not in result.stdout
    assert result.rc != 0


def test_copy_key_cannot_read_back(db):
    """rrsync runs write-only: the key cannot download the copies."""
    rsync = (
        "runuser -u operativos_backup -- rsync -e 'ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o UserKnownHostsFile=/etc/operativos-backup/known_hosts' %s /tmp/"
    )
    result = db.run(rsync, KEY, f"{APP}-backup@operativos-backup-store:.")
    assert result.rc != 0


def test_copies_private_to_receiver(store):
    folder = store.file(COPIES)
    assert folder.user == f"{APP}-backup"
    assert folder.mode == 0o750
