"""The WSGI server behind ``shequn serve`` (and the HTTP benchmark, so it measures this setup).

One process (``workers=1``, the default, as ``make demo`` runs it): waitress with ``threads``
threads. It runs anywhere, and the sweeper runs as a timer thread beside it.

Several processes (``workers>1``): gunicorn forks ``workers`` sync workers. One Python process
holds one interpreter lock, so it uses about one core however many threads it has (the member
order endpoint measured 0.91 core in one process); with N cores, run about N+1 processes.
A sync worker takes one request at a time and only then accepts the next connection, so every
request waits in one shared queue (the listening socket's) and none waits behind a busy
process while another is idle: at 32 connections the flash-sale endpoint's p99 measured 28–38
ms this way, and 50–110 ms (outliers to 0.4 s) with threaded workers, which keep each
client's connection on the process that accepted it. Sync workers expect a buffering reverse
proxy (nginx) in front of them, as gunicorn's documentation says: a slow client would hold a
worker for as long as it takes to send its request.

Workers share nothing in memory: the flash-sale sold-out memo and admission gate are per
process (``orders/flash_path.py``). The sweeper runs in one process of its own, forked from
the master once it is ready, so the sweeps run once per server, not once per worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("shequn.server")

WSGIApp = Callable[..., Any]


def serve(
    application: WSGIApp,
    *,
    host: str,
    port: int,
    workers: int = 1,
    threads: int = 8,
    sweep_interval_s: float = 0.0,
    quiet: bool = False,
) -> None:
    """Serve until interrupted. ``threads`` applies to the single-process server only;
    ``sweep_interval_s`` 0 runs no sweeper in this server."""
    if workers < 1 or threads < 1:
        raise ValueError("workers and threads must be at least 1")
    _import_every_view()
    if workers == 1:
        _serve_waitress(application, host, port, threads, sweep_interval_s, quiet)
    else:
        _serve_gunicorn(application, host, port, workers, sweep_interval_s, quiet)


def unsafe_for_serving() -> list[str]:
    """What in the current settings is for development only and unsafe on a served site:
    the public dev SECRET_KEY (or a weak one — whoever has it can forge a member's token),
    login codes shown on the page instead of texted, DEBUG. Empty: safe to serve."""
    from django.conf import settings

    from shequn.settings import DEV_SECRET_KEY

    key = str(settings.SECRET_KEY)
    problems = []
    if key == DEV_SECRET_KEY or len(key) < 50 or len(set(key)) < 5:
        problems.append("SECRET_KEY 是公开的开发密钥或过弱(会员令牌可被伪造)")
    if settings.SHEQUN_SMS_BACKEND == "display":
        problems.append("短信验证码会显示在登录页上 (SHEQUN_SMS_BACKEND=display)")
    if settings.DEBUG:
        problems.append("DEBUG 已开启")
    return problems


def _import_every_view() -> None:
    """Import the URLconf, and with it every view, API and what they import (the classifier,
    jieba …), now rather than in each worker's first request: that took 0.65 s of CPU per
    process, charged to whichever request came first. Forked workers share these pages."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - importing is the point


def _serve_waitress(
    application: WSGIApp, host: str, port: int, threads: int, sweep_interval_s: float, quiet: bool
) -> None:
    from waitress import serve as waitress_serve

    if sweep_interval_s > 0:
        from shequn.sweeper import start_sweeper_thread

        start_sweeper_thread(sweep_interval_s)
    waitress_serve(application, host=host, port=port, threads=threads, ident="shequn", _quiet=quiet)


def _sweep_forever(interval_s: float) -> None:
    """The sweeper process: the same timer loop as the single-process server, in a process of
    its own (its own database connections), until the master sends SIGTERM."""
    from django.db import connections

    from shequn.sweeper import start_sweeper_thread

    connections.close_all()  # nothing inherited from the master is used here
    stop = start_sweeper_thread(interval_s)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(3600):
        pass


def _serve_gunicorn(
    application: WSGIApp, host: str, port: int, workers: int, sweep_interval_s: float, quiet: bool
) -> None:
    from django.db import connections
    from gunicorn.app.base import BaseApplication

    # Workers are forked from this process: a connection opened here would be shared by all
    # of them on one socket. Each worker opens its own on first use.
    connections.close_all()
    sweepers: list[multiprocessing.process.BaseProcess] = []

    def when_ready(_arbiter: Any) -> None:
        if sweep_interval_s > 0:
            process = multiprocessing.get_context("fork").Process(
                target=_sweep_forever, args=(sweep_interval_s,), name="shequn-sweeper"
            )
            process.start()
            sweepers.append(process)

    def on_exit(_arbiter: Any) -> None:
        for process in sweepers:
            process.terminate()
            process.join(10)

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "sync",
                # Logging stays Django's; gunicorn reports only its own start, stop and errors.
                "loglevel": "warning" if quiet else "info",
                "accesslog": None,
                "proc_name": "shequn",
                # gunicorn 24+ opens a control socket at ~/.gunicorn/gunicorn.ctl by default:
                # one path for every server of the user, and nothing here uses it.
                "control_socket_disable": True,
                "when_ready": when_ready,
                "on_exit": on_exit,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            return application

    Gunicorn().run()
