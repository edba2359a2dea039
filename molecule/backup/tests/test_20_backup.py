"""One backup run: the published set, its manifest, the globals dump and the least-privilege pg_dump."""

import pytest

from conftest import APP, BACKUP_DIR, BACKUP_USER, SERVICE, journal, live_counts, manifest, sql, start_backup

LATE_TABLE = "historico.creada_despues"


@pytest.fixture(scope="module")
def backup_run(db):
    # Rows for the freshness rule, and a table that the owner creates after the play granted anything.
    sql(db, "INSERT INTO operativos.operativo (nombre, fecha, creado) VALUES ('prueba', current_date, now())")
    sql(
        db,
        "INSERT INTO historico.registro (operativo_id, descripcion, registrado) "
        "SELECT id, 'registro ' || g, now() FROM operativos.operativo, generate_series(1, 50) g",
    )
    sql(db, f"SET ROLE {APP}; CREATE TABLE {LATE_TABLE} (id int); INSERT INTO {LATE_TABLE} VALUES (1), (2), (3)")
    counts = live_counts(db)
    result, new = start_backup(db)
    return result, new, counts


def test_backup_service_succeeds(db, backup_run):
    result, _, _ = backup_run
    assert result.rc == 0, journal(db, SERVICE)


def test_backup_publishes_one_set(backup_run):
    _, new, _ = backup_run
    assert len(new) == 1
    assert not new[0].startswith(".partial")


def test_set_holds_dump_globals_manifest(db, backup_run):
    _, new, _ = backup_run
    names = sorted(db.run("ls -1 %s", f"{BACKUP_DIR}/{new[0]}").stdout.split())
    assert names == sorted([f"{APP}.dump", "SHA256SUMS", "globals.sql", "manifest.json"])


def test_sha256sums_file_checks(db, backup_run):
    _, new, _ = backup_run
    result = db.run("cd %s && sha256sum --check --strict SHA256SUMS", f"{BACKUP_DIR}/{new[0]}")
    assert result.rc == 0, result.stdout + result.stderr


def test_globals_lists_roles_without_passwords(db, backup_run):
    _, new, _ = backup_run
    globals_file = db.file(f"{BACKUP_DIR}/{new[0]}/globals.sql")
    assert globals_file.mode == 0o640
    assert globals_file.user == BACKUP_USER
    assert f"CREATE ROLE {APP};" in globals_file.content_string
    assert "SCRAM-SHA-256$" not in globals_file.content_string
    assert "PASSWORD" not in globals_file.content_string


def test_manifest_describes_backup(db, backup_run):
    _, new, _ = backup_run
    data = manifest(db, new[0])
    assert data["id"] == new[0]
    assert data["database"] == APP
    assert data["owner"] == APP
    assert data["search_path"] == ["operativos", "historico", "cuenta", "public"]
    assert data["server_version"].startswith(("15", "17"))
    assert "pg_dump (PostgreSQL)" in data["pg_dump_version"]
    assert data["database_size_bytes"] > 1_000_000
    assert data["release"] == db.file(f"/srv/{APP}/current/REVISION").content_string.strip()


def test_set_readable_by_group_only(db, backup_run):
    """postgres, a member of the backup user's group, reads the sets for restores; other users read nothing."""
    _, new, _ = backup_run
    folder = f"{BACKUP_DIR}/{new[0]}"
    assert db.file(folder).user == BACKUP_USER
    assert db.file(folder).group == BACKUP_USER
    assert db.file(folder).mode == 0o750
    for name in db.run("ls -1 %s", folder).stdout.split():
        assert db.file(f"{folder}/{name}").user == BACKUP_USER, name
        assert db.file(f"{folder}/{name}").mode == 0o640, name


def test_manifest_counts_match_live(db, backup_run):
    _, new, counts = backup_run
    assert manifest(db, new[0])["row_counts"] == counts
    assert counts["historico.registro"] >= 50


def test_manifest_sha256_matches_files(db, backup_run):
    _, new, _ = backup_run
    folder = f"{BACKUP_DIR}/{new[0]}"
    files = manifest(db, new[0])["files"]
    assert sorted(files) == sorted([f"{APP}.dump", "globals.sql"])
    for name, digest in files.items():
        assert db.run("sha256sum %s", f"{folder}/{name}").stdout.split()[0] == digest, name


def test_late_table_in_dump(db, backup_run):
    """pg_dump runs as the backup role, which has no grant on the late table but reads it through pg_read_all_data."""
    _, new, _ = backup_run
    grants = sql(db, f"SELECT has_table_privilege('{APP}_backup', '{LATE_TABLE}', 'SELECT')")
    assert grants == [["t"]]
    explicit = sql(db, f"SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = '{APP}_backup'")
    assert explicit == [["0"]]
    listing = db.run("pg_restore --list %s", f"{BACKUP_DIR}/{new[0]}/{APP}.dump").stdout
    assert "TABLE DATA historico creada_despues" in listing
    assert manifest(db, new[0])["row_counts"]["historico.creada_despues"] == 3
