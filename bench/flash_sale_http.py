"""Flash sale over HTTP: the member order endpoint (``POST /api/member/orders``, a flash-sale
purchase through the actions layer) served as ``shequn serve --workers 2 --threads 8`` serves it
(``shequn.server``: gunicorn, two gthread workers), hit by 32 keep-alive connections from wrk in a
second process on loopback; then, in the same run, server and database, a minimal Django view
doing the reference transaction (order INSERT + guarded stock UPDATE) under the same server.
Every attempt is sent exactly once (``_flash_http_load.lua``). One JSON line: orders/s and p99
of both, and their ratio.

wrk comes from Debian's packages (``make bench`` installs it).

PostgreSQL only (shequn_bench_flash_http, recreated each run); skipped if nothing answers on
127.0.0.1:5432.
"""

from __future__ import annotations

import json
import os
import shutil
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
SERVER_WORKERS = int(os.environ.get("XW", "2"))
SERVER_THREADS = int(os.environ.get("XT", "8"))


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


def build_sale_and_requests(folder: Path) -> dict[str, Any]:
    """The sale, the reference's table, and one requests file per leg: a distinct member and
    idempotency key per attempt, the same members in both legs."""
    import flash_sale as fs
    from django.db import connection

    from shequn.groups.codes import sign_member

    fs.UNITS, fs.ATTEMPTS = UNITS, ATTEMPTS
    world = fs.build_sale(CONNECTIONS)
    with connection.cursor() as cursor:
        for statement in fs.REFERENCE_DDL:
            cursor.execute(statement)
        cursor.execute("INSERT INTO bench_flash_stock VALUES (1, %s, 0)", [UNITS])
    store_id, sku_id = world["store"].pk, world["sku"].pk
    actions, reference = [], []
    for n, member in enumerate(world["members"]):
        order = {
            "store_id": store_id,
            "lines": [{"sku_id": sku_id, "quantity": 1}],
            "idempotency_key": f"k{n}",
            "flash_sale_id": world["sale"].pk,
        }
        actions.append(f"{sign_member(member.pk)}\t{json.dumps(order)}\n")
        plain = {"n": n, "member_id": member.pk, "store_id": store_id, "sku_id": sku_id}
        reference.append(f"\t{json.dumps(plain)}\n")
    (folder / "actions.txt").write_text("".join(actions), encoding="utf-8")
    (folder / "reference.txt").write_text("".join(reference), encoding="utf-8")
    return world


def load(port: int, requests: Path, path: str) -> dict[str, Any]:
    """One leg: wrk sends every request in the file once over CONNECTIONS connections."""
    command = [
        "wrk", "-t1", f"-c{CONNECTIONS}", "-d600s", "--timeout", "60s",
        "-s", str(BENCH / "_flash_http_load.lua"), f"http://127.0.0.1:{port}",
        "--", str(requests), path,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            found = dict(json.loads(line.removeprefix("RESULT ")))
            found["per_s"] = found["outcomes"].get("placed", 0) / found["wall_s"]
            return found
    raise RuntimeError(f"wrk printed no result: {result.stdout} {result.stderr}")


def main() -> int:
    if not postgres_answers("flash_sale_http", "skipping (PostgreSQL only)"):
        return 0
    if shutil.which("wrk") is None:
        log("flash_sale_http: skipping (wrk is not installed; `make bench` installs it)")
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
    folder = Path(tempfile.mkdtemp(prefix="shequn-flash-http-"))
    world = build_sale_and_requests(folder)
    connections.close_all()
    server_command = [
        sys.executable, str(BENCH / "_flash_http_server.py"),
        str(port), str(SERVER_WORKERS), str(SERVER_THREADS),
    ]  # fmt: skip
    server = subprocess.Popen(server_command, env=env, cwd=ROOT)  # noqa: S603
    try:
        wait_for(port)
        log(
            f"[postgresql] flash sale over HTTP: {UNITS} units, {ATTEMPTS} attempts, wrk with"
            f" {CONNECTIONS} connections; gunicorn {SERVER_WORKERS} × {SERVER_THREADS} threads"
        )
        actions = load(port, folder / "actions.txt", "/api/member/orders")
        log(f"[postgresql] endpoint:  {actions}")
        reference = load(port, folder / "reference.txt", "/bench/reference-flash")
        log(f"[postgresql] reference: {reference}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder)
    import flash_sale as fs

    oversold = fs.oversold_actions(world)
    line = {
        "bench": "flash_sale_http",
        "db": "postgresql",
        "connections": CONNECTIONS,
        "server_workers": SERVER_WORKERS,
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
