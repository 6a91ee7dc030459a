"""Statements PostgreSQL parses and plans once per connection (server-side prepared).

Django's cursors bind parameters client-side and send the whole SQL text every time, so the
server parses and plans it on every call. For the few statements a flash sale runs on every
request (the order statement, the retry lookup, the member-and-store read) that work costs
more than the statement itself. ``fetch_one_prepared`` runs one of them through psycopg on
Django's connection with ``prepare=True`` (kept per connection by psycopg, enabled by the
``prepare_threshold`` in the settings). Errors come out as Django's, and the statement is
logged like any other when queries are logged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection


def fetch_one_prepared(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, binary: bool = False
) -> tuple[Any, ...] | None:
    """The statement's first row (PostgreSQL only). ``binary`` results skip parsing text
    (timestamps especially); leave it off where Django's own loaders must see text (JSON)."""
    connection.close_if_health_check_failed()  # as Django's cursors do first
    connection.ensure_connection()
    started = time.perf_counter()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True, binary=binary)
        row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.perf_counter() - started:.3f}"})
    return None if row is None else tuple(row)
