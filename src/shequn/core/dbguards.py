"""Database-level guards that hold even for raw SQL: append-only tables.

Installed by migration ``core.0002``. The test suite removes them just before Django flushes
the database between transactional tests and puts them back before the next test.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

# Every append-only table of the project (the test suite lifts them all around a flush).
APPEND_ONLY_TABLES = (
    "core_auditevent",
    "catalog_stockmovement",
    "referrals_ledgertransaction",
    "referrals_posting",
)


def _sqlite_up(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;""",
    ]


def _sqlite_down(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update;",
        f"DROP TRIGGER IF EXISTS {table}_no_delete;",
    ]


def _postgres_up(table: str) -> list[str]:
    return [
        """CREATE OR REPLACE FUNCTION shequn_append_only() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql;""",
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
        f"""CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION shequn_append_only();""",
        # TRUNCATE skips row triggers, so it gets a statement trigger of its own.
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION shequn_append_only();""",
    ]


def _postgres_down(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
    ]


def _statements(vendor: str, install: bool, tables: tuple[str, ...]) -> list[str]:
    builders = {
        ("sqlite", True): _sqlite_up,
        ("sqlite", False): _sqlite_down,
        ("postgresql", True): _postgres_up,
        ("postgresql", False): _postgres_down,
    }
    builder = builders.get((vendor, install))
    if builder is None:
        return []
    return [sql for table in tables for sql in builder(table)]


def install_append_only_guards(
    connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES
) -> None:
    """Each app's migration installs the guard for its own table; tests pass them all."""
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, True, tables):
            cursor.execute(sql)


def remove_append_only_guards(
    connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES
) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, False, tables):
            cursor.execute(sql)
