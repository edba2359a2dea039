"""Retention by count and age never deletes the newest set nor the newest set that passed a drill."""

import json

import pytest

from conftest import APP, BACKUP_USER

SETS = "/var/tmp/prune-sets"
RESULTS = "/var/tmp/prune-drills"
CONFIG = "/var/tmp/prune-config.json"
IDS = [f"2024010{day}T000000Z" for day in range(1, 7)]


def prune(db, keep: int, max_age_days: int) -> list[str]:
    """Create six sets, mark the second as drilled and the fourth as failed, prune, return what is left."""
    config = json.loads(db.file(f"/etc/{APP}-backup/config.json").content_string)
    config.update(backup_dir=SETS, keep=keep, max_age_days=max_age_days)
    config["drill"]["result_dir"] = RESULTS
    db.run("rm -rf %s %s && install -d -o %s -m 0750 %s %s", SETS, RESULTS, BACKUP_USER, SETS, RESULTS)
    for backup_id in IDS:
        db.run(
            "install -d -o %s %s && echo '{}' > %s",
            BACKUP_USER,
            f"{SETS}/{backup_id}",
            f"{SETS}/{backup_id}/manifest.json",
        )
    db.run("install -d -o %s %s", BACKUP_USER, f"{SETS}/.partial-20240107T000000Z")
    for name, backup_id, passed in (("a", IDS[1], True), ("b", IDS[3], False)):
        result = json.dumps({"backup_id": backup_id, "passed": passed})
        db.run("printf '%%s' %s > %s", result, f"{RESULTS}/{name}.json")
    db.run("printf '%%s' %s > %s && chmod 0644 %s", json.dumps(config), CONFIG, CONFIG)
    db.run("chown -R %s %s", BACKUP_USER, RESULTS)
    run = db.run(
        "runuser -u %s -- /usr/bin/python3 %s --config %s prune",
        BACKUP_USER,
        f"/usr/local/lib/{APP}-backup/pgbackup.py",
        CONFIG,
    )
    assert run.rc == 0, run.stderr
    return sorted(db.run("ls -1A %s", SETS).stdout.split())


@pytest.fixture(autouse=True)
def cleanup(db):
    yield
    db.run("rm -rf %s %s %s", SETS, RESULTS, CONFIG)


def test_count_keeps_newest_and_drilled(db):
    assert prune(db, keep=2, max_age_days=0) == [IDS[1], IDS[4], IDS[5]]


def test_age_keeps_newest_and_drilled(db):
    assert prune(db, keep=10, max_age_days=30) == [IDS[1], IDS[5]]


def test_large_limits_keep_everything(db):
    assert prune(db, keep=10, max_age_days=0) == IDS
