"""Disaster recovery with playbooks/restore.yml: a corrupt backup changes nothing; a good one is swapped in."""

import json

import pytest

from conftest import APP, BACKUP_DIR, ansible_playbook, clone_set, live_counts, published_sets, sql

CORRUPT_ID = "20000101T000010Z"


def health(db) -> tuple[int, dict]:
    # HTTPS with the site's name in TLS SNI (nginx rejects a handshake without it), sent to the loopback.
    result = db.run(
        "curl --silent --max-time 15 --write-out '\\n%{http_code}' --resolve localhost:443:127.0.0.1 "
        f"--cacert /etc/nginx/tls/{APP}.crt https://localhost/api/health"
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.startswith("{") else {}


def databases(db) -> list[str]:
    return [
        row[0] for row in sql(db, f"SELECT datname FROM pg_database WHERE datname LIKE '{APP}%' ORDER BY 1", "postgres")
    ]


def restore(backup_id: str, confirm: str = APP):
    return ansible_playbook(
        "playbooks/restore.yml", "-e", f"restore_backup_id={backup_id}", "-e", f"restore_confirm={confirm}"
    )


def newest(db) -> str:
    return [name for name in published_sets(db) if not name.startswith(".")][-1]


def test_restore_without_confirmation_refused(db):
    run = restore(newest(db), confirm="yes")
    assert run.returncode != 0
    assert f"restore_confirm={APP} to confirm" in run.stdout + run.stderr


@pytest.fixture(scope="module")
def corrupt_restore(db):
    folder = clone_set(db, newest(db), CORRUPT_ID)
    db.run("printf 'garbage' | dd of=%s bs=1 seek=4096 conv=notrunc", f"{folder}/{APP}.dump")
    before = live_counts(db), databases(db)
    run = restore(CORRUPT_ID)
    yield run, before
    db.run("rm -rf %s", folder)


def test_corrupt_restore_fails(corrupt_restore):
    run, _ = corrupt_restore
    assert run.returncode != 0
    assert "sha256 mismatch" in run.stdout + run.stderr
    assert "is as it was before the restore" in run.stdout + run.stderr


def test_corrupt_restore_leaves_live_database(db, corrupt_restore):
    _, (counts, names) = corrupt_restore
    assert live_counts(db) == counts
    assert databases(db) == names


def test_corrupt_restore_keeps_site_serving(db, corrupt_restore):
    status, body = health(db)
    assert status == 200
    assert body["database"] == "up"
    assert not db.file(f"/srv/{APP}/shared/maintenance").exists


@pytest.fixture(scope="module")
def good_restore(db):
    """Back up, add rows after the backup, then restore the backup: the added rows must be gone."""
    target = newest(db)
    expected = json.loads(db.file(f"{BACKUP_DIR}/{target}/manifest.json").content_string)["row_counts"]
    sql(
        db,
        "INSERT INTO historico.registro (operativo_id, descripcion, registrado) "
        "SELECT id, 'despues del backup', now() FROM operativos.operativo",
    )
    run = restore(target)
    yield run, target, expected
    for name in databases(db):
        if name.startswith(f"{APP}_before_"):
            sql(db, f"DROP DATABASE {name} WITH (FORCE)", "postgres")


def test_good_restore_succeeds(good_restore):
    run, _, _ = good_restore
    assert run.returncode == 0, run.stdout[-5000:]


def test_good_restore_brings_backup_rows(db, good_restore):
    _, target, expected = good_restore
    counts = live_counts(db)
    # Tables that migrate adds after the swap would appear here; the stand-in's release has none to add.
    assert counts == expected, f"live rows differ from backup {target}"


def test_good_restore_keeps_previous_database(db, good_restore):
    previous = [name for name in databases(db) if name.startswith(f"{APP}_before_")]
    assert len(previous) == 1
    added = sql(db, "SELECT count(*) FROM historico.registro WHERE descripcion = 'despues del backup'", previous[0])
    assert int(added[0][0]) >= 1


def test_good_restore_serves_site(db, good_restore):
    status, body = health(db)
    assert status == 200
    assert body["database"] == "up"
    assert not db.file(f"/srv/{APP}/shared/maintenance").exists


def test_good_restore_keeps_owner_and_search_path(db, good_restore):
    assert sql(db, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{APP}'", "postgres") == [[APP]]
    setting = sql(
        db,
        "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d "
        f"ON d.oid = s.setdatabase WHERE d.datname = '{APP}'",
        "postgres",
    )
    assert ["search_path=operativos, historico, cuenta, public"] in setting


def test_good_restore_took_safety_backup(db, good_restore):
    kinds = [
        json.loads(db.file(f"{BACKUP_DIR}/{name}/manifest.json").content_string)["kind"]
        for name in published_sets(db)
        if not name.startswith(".")
    ]
    assert "safety" in kinds
