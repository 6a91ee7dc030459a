"""The PostgreSQL backend's health check (``shequn.core.postgresql``): a kept connection that
the server ended is replaced before the request uses it; a healthy one is not sent anything."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL backend"),
]


def _other() -> psycopg.Connection[tuple[object, ...]]:
    """A connection of the test's own to the same database, to watch and to kill with."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def _new_request() -> None:
    """What Django does when a request starts on a kept connection."""
    connection.health_check_done = False


def test_the_backend_is_ours_with_health_checks_on() -> None:
    assert connection.settings_dict["ENGINE"] == "shequn.core.postgresql"
    connection.ensure_connection()
    assert connection.health_check_enabled


def test_a_connection_the_server_ended_is_replaced_before_use() -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with _other() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # the backend is gone once it has left pg_stat_activity
            if not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                break
            time.sleep(0.05)
    _new_request()
    with connection.cursor() as cursor:  # no error reaches the request
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_a_healthy_connection_is_checked_without_a_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'health-check-marker'")
        pid = connection.connection.info.backend_pid
    _new_request()
    connection.close_if_health_check_failed()
    assert connection.health_check_done
    with _other() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row == ("SELECT 'health-check-marker'",)  # Django's check would have sent SELECT 1
    assert connection.connection.info.backend_pid == pid
