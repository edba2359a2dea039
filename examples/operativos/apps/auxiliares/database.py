"""Database check behind /api/health."""

from django.db import connection

REQUIRED_SCHEMAS = ("operativos", "historico", "cuenta")


class MissingSchemaError(Exception):
    """Raised when a PostgreSQL schema that the models need does not exist."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"missing PostgreSQL schemas: {', '.join(missing)}")


def check_database() -> None:
    """Run SELECT 1 and check that every schema in REQUIRED_SCHEMAS exists.

    Raises django.db.Error when the database is unreachable or a query fails, and MissingSchemaError
    naming the absent schemas. This check works on PostgreSQL only because it reads pg_namespace.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
        cursor.execute(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)",
            [list(REQUIRED_SCHEMAS)],
        )
        present = {row[0] for row in cursor.fetchall()}

    missing = [schema for schema in REQUIRED_SCHEMAS if schema not in present]
    if missing:
        raise MissingSchemaError(missing)
