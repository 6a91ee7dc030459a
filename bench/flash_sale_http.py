"""Flash sale over HTTP: the member order endpoint (``POST /api/member/orders``, a flash-sale
purchase through the actions layer) under waitress, hit by 32 keep-alive connections from a load
generator in a second process on loopback; then, in the same run, server and database, a minimal
Django view doing the reference transaction (order INSERT + guarded stock UPDATE) under the same
server config. One JSON line: orders/s and p99 of both, and their ratio.

PostgreSQL only (shequn_bench_flash_http, recreated each run); skipped if nothing answers on
127.0.0.1:5432.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import log, postgres_answers, recreate_database

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PG_DB = "shequn_bench_flash_http"
UNITS = 5_000
ATTEMPTS = 10_000
CONNECTIONS = 32
SERVER_THREADS = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer on port {port}")


def build_job(port: int) -> dict[str, Any]:
    import flash_sale as fs
    from django.db import connection

    from shequn.groups.codes import sign_member

    fs.UNITS, fs.ATTEMPTS = UNITS, ATTEMPTS
    world = fs.build_sale(CONNECTIONS)
    with connection.cursor() as cursor:
        for statement in fs.REFERENCE_DDL:
            cursor.execute(statement)
        cursor.execute("INSERT INTO bench_flash_stock VALUES (1, %s, 0)", [UNITS])
    return {
        "port": port,
        "store_id": world["store"].pk,
        "sku_id": world["sku"].pk,
        "sale_id": world["sale"].pk,
        "members": [[m.pk, sign_member(m.pk)] for m in world["members"]],
        "_world": world,
    }


def load(job_path: str, leg: str) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "_http_load.py"), job_path, leg, str(CONNECTIONS)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return dict(json.loads(result.stdout))


def main() -> int:
    if not postgres_answers("flash_sale_http", "skipping (PostgreSQL only)"):
        return 0
    env = dict(
        os.environ,
        DATABASE_URL=recreate_database(PG_DB),
        DJANGO_SETTINGS_MODULE="shequn.settings.dev",
        DEBUG="0",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    os.environ.update(env)
    os.chdir(ROOT)
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0)
    port = free_port()
    job = build_job(port)
    world = job.pop("_world")
    connections.close_all()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, str(BENCH / "_flash_http_server.py"), str(port), str(SERVER_THREADS)],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for(port)
        log(
            f"[postgresql] flash sale over HTTP: {UNITS} units, {ATTEMPTS} attempts,"
            f" {CONNECTIONS} connections, waitress {SERVER_THREADS} threads"
        )
        actions = load(handle.name, "actions")
        log(f"[postgresql] endpoint:  {actions}")
        reference = load(handle.name, "reference")
        log(f"[postgresql] reference: {reference}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        os.unlink(handle.name)
    import flash_sale as fs

    oversold = fs.oversold_actions(world)
    line = {
        "bench": "flash_sale_http",
        "db": "postgresql",
        "connections": CONNECTIONS,
        "server_threads": SERVER_THREADS,
        "units": UNITS,
        "attempts": ATTEMPTS,
        "orders_per_s": round(actions["per_s"], 1),
        "reference_orders_per_s": round(reference["per_s"], 1),
        "ratio": round(actions["per_s"] / reference["per_s"], 3),
        "oversold": oversold,
        "p99_ms": round(actions["p99_ms"], 2),
        "reference_p99_ms": round(reference["p99_ms"], 2),
    }
    print(json.dumps(line), flush=True)
    if oversold or actions["outcomes"].get("placed") != UNITS:
        log(f"flash_sale_http: FAILED: {line}, outcomes {actions['outcomes']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
