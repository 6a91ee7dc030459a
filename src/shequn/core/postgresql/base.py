"""Django's PostgreSQL backend, but the per-request health check of a kept connection looks at
the socket instead of sending ``SELECT 1``.

Connections live across requests (``CONN_MAX_AGE``), so each request first checks that its
connection still works (``CONN_HEALTH_CHECKS``). Django checks with a ``SELECT 1``: a round trip
on every request, a quarter of what a sold-out flash-sale request costs. An idle connection
has nothing to read; when the server ends it (restart, ``pg_terminate_backend``, an idle
timeout, a crashed backend) it sends its error and closes, or the socket reports EOF, and the
socket turns readable. So: nothing to read and psycopg sees no failure → usable, at no cost;
otherwise Django's own ``SELECT 1`` decides (anything harmless waiting there, such as a
parameter report after a configuration reload, is read by it and the connection is kept).
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.connection is not None and not self.health_check_done and self._quiet():
            self.health_check_done: bool = True  # nothing to read: usable, and no round trip
            return
        super().close_if_health_check_failed()  # Django's own check: SELECT 1

    def _quiet(self) -> bool:
        """Open as far as psycopg knows, and the server has sent nothing since our last reply."""
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # the descriptor is gone
            return False
        return not readable
