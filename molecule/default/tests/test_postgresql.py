"""The application database: schemas, privileges, search_path and authentication."""

import pytest

from conftest import APP, ROOT, SCHEMAS


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_is_owned_by_app_role(sql, schema):
    rows = sql(f"SELECT nspowner::regrole FROM pg_namespace WHERE nspname = '{schema}'")
    assert rows == [[APP]]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_holds_app_tables(sql, schema):
    rows = sql(
        "SELECT count(*) FROM information_schema.tables "
        f"WHERE table_schema = '{schema}' AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'django%'"
    )
    assert int(rows[0][0]) >= 1


@pytest.mark.parametrize("schema", SCHEMAS)
def test_owner_can_create_table_in_schema(host, schema):
    result = host.run(
        "runuser -u postgres -- psql --no-psqlrc -v ON_ERROR_STOP=1 -d %s -c %s",
        APP,
        f"BEGIN; SET ROLE {APP}; CREATE TABLE {schema}.probe_table (id int); ROLLBACK;",
    )
    assert result.rc == 0, result.stderr


def test_other_role_cannot_create_in_public(host):
    result = host.run(
        "runuser -u postgres -- psql --no-psqlrc -v ON_ERROR_STOP=1 -d %s -c %s",
        APP,
        "BEGIN; CREATE ROLE probe_intruder; SET ROLE probe_intruder; CREATE TABLE public.probe_table (id int);",
    )
    assert result.rc != 0
    assert "permission denied for schema public" in result.stderr


def test_app_role_search_path_lists_schemas(host):
    # Log in as the application does, with the password from its environment file.
    result = host.run(
        "set -a; . %s; psql --no-psqlrc --tuples-only --no-align \"$DATABASE_URL\" -c 'SHOW search_path'",
        f"{ROOT}/shared/.env",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "operativos, historico, cuenta, public"


@pytest.mark.parametrize("attribute", ["rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication"])
def test_app_role_lacks_attribute(sql, attribute):
    assert sql(f"SELECT {attribute} FROM pg_roles WHERE rolname = '{APP}'") == [["f"]]


def test_password_is_stored_as_scram(sql):
    assert sql(f"SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = '{APP}'") == [["SCRAM-SHA-256$"]]


def test_wrong_password_is_rejected(host):
    result = host.run("PGPASSWORD=wrong-password psql --no-psqlrc -h 127.0.0.1 -U %s -d %s -c 'SELECT 1'", APP, APP)
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_hba_has_no_trust_lines(sql):
    assert sql("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'") == [["0"]]


def test_hba_file_has_no_errors(sql):
    assert sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == [["0"]]


def test_server_listens_on_loopback_only(host):
    listeners = host.run("ss --listening --tcp --numeric --no-header 'sport = :5432'").stdout.split("\n")
    addresses = sorted(line.split()[3].rsplit(":", 1)[0] for line in listeners if line.strip())
    assert addresses
    assert set(addresses) <= {"127.0.0.1", "[::1]"}


def hba_lines(host) -> list[list[str]]:
    """Return the rule lines of the cluster's pg_hba.conf, split into fields, without comments."""
    path = host.run("runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align -c 'SHOW hba_file'").stdout
    content = host.file(path.strip()).content_string
    return [line.split() for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_hba_file_uses_peer_or_scram_only(host):
    methods = {fields[-1] for fields in hba_lines(host)}
    assert methods <= {"peer", "scram-sha-256"}
    assert "trust" not in methods
    assert "md5" not in methods
    assert "password" not in methods


def test_hba_peer_only_for_listed_roles(host):
    peer = sorted((fields[1], fields[2]) for fields in hba_lines(host) if fields[-1] == "peer")
    # The exporter's role may reach only the postgres maintenance database.
    assert peer == [("all", f"{APP}_backup"), ("all", "postgres"), ("postgres", "prometheus")]


def test_password_encryption_is_scram(sql):
    assert sql("SHOW password_encryption") == [["scram-sha-256"]]


def test_app_role_cannot_log_in_without_password(host):
    result = host.run("psql --no-psqlrc --no-password -h 127.0.0.1 -U %s -d %s -c 'SELECT 1'", APP, APP)
    assert result.rc != 0
    assert "no password supplied" in result.stderr
