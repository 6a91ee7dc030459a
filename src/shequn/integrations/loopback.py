"""Serving a simulated platform (WeChat Pay, WeCom) on loopback, for the demo and the tests:
a threaded WSGI server in a daemon thread that does not log every request."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a page and an API call may overlap


def serve_wsgi(app: Any, name: str, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """Start ``app`` in a daemon thread; ``server.server_port`` tells the port (0: any free)."""
    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
