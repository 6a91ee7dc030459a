"""Flash sale over HTTP: the member order endpoint (``POST /api/member/orders``, a flash-sale
purchase through the actions layer) served as ``shequn serve --workers N`` serves it
(``shequn.server``: gunicorn with N sync workers, the cores plus one: 3 here), hit by 32
connections from wrk in a second process on loopback; then, in the same run, server and database, a minimal Django view
doing the reference transaction (order INSERT + guarded stock UPDATE) under the same server.
Every attempt is sent exactly once (``_flash_http_load.lua``).

This machine's speed drifts by ±15% within a minute (shared cores), so the two legs are run
in ROUNDS rounds, each on a fresh sale and a fresh reference table, in alternating order
(endpoint first, then reference first, …). One JSON line: the median of each leg's orders/s
and p99 over the rounds, and the median of the rounds' ratios (each round's two legs ran
back to back); every round's figures go to stderr.

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

from _common import log, median, postgres_answers, recreate_database

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PG_DB = "shequn_bench_flash_http"
UNITS = 5_000
ATTEMPTS = 10_000
CONNECTIONS = 32
ROUNDS = 3
SERVER_WORKERS = (os.cpu_count() or 2) + 1  # processes: the cores plus one (3 here)


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


def build_sale_and_requests(folder: Path, round_: int) -> dict[str, Any]:
    """A fresh sale (its own chain, SKU and members), the reference's table emptied and
    restocked, and one requests file per leg: a distinct member and idempotency key per
    attempt, the same members in both legs."""
    import flash_sale as fs
    from django.db import connection

    from shequn.groups.codes import sign_member

    fs.UNITS, fs.ATTEMPTS = UNITS, ATTEMPTS
    world = fs.build_sale(1000 + round_)
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


def run_round(port: int, folder: Path, round_: int) -> dict[str, Any]:
    """Both legs on a fresh sale, the endpoint first in even rounds; its oversell check."""
    import flash_sale as fs
    from django.db import connections

    world = build_sale_and_requests(folder, round_)
    connections.close_all()
    legs = [("actions", "/api/member/orders"), ("reference", "/bench/reference-flash")]
    found: dict[str, Any] = {}
    for leg, path in legs if round_ % 2 == 0 else legs[::-1]:
        found[leg] = load(port, folder / f"{leg}.txt", path)
        log(f"[postgresql] round {round_ + 1}, {leg}: {found[leg]}")
    found["oversold"] = fs.oversold_actions(world)
    found["ratio"] = found["actions"]["per_s"] / found["reference"]["per_s"]
    return found


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

    django.setup()
    call_command("migrate", verbosity=0)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="shequn-flash-http-"))
    server_command = [
        sys.executable, str(BENCH / "_flash_http_server.py"),
        str(port), str(SERVER_WORKERS),
    ]  # fmt: skip
    server = subprocess.Popen(server_command, env=env, cwd=ROOT)  # noqa: S603
    try:
        wait_for(port)
        log(
            f"[postgresql] flash sale over HTTP: {ROUNDS} rounds of {UNITS} units and {ATTEMPTS}"
            f" attempts, wrk with {CONNECTIONS} connections;"
            f" gunicorn, {SERVER_WORKERS} sync workers"
        )
        rounds = [run_round(port, folder, round_) for round_ in range(ROUNDS)]
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder)

    line = {
        "bench": "flash_sale_http",
        "db": "postgresql",
        "connections": CONNECTIONS,
        "server_workers": SERVER_WORKERS,
        "units": UNITS,
        "attempts": ATTEMPTS,
        "rounds": ROUNDS,
        "orders_per_s": round(median([r["actions"]["per_s"] for r in rounds]), 1),
        "reference_orders_per_s": round(median([r["reference"]["per_s"] for r in rounds]), 1),
        "ratio": round(median([r["ratio"] for r in rounds]), 3),
        "oversold": sum(r["oversold"] for r in rounds),
        "p99_ms": round(median([r["actions"]["p99_ms"] for r in rounds]), 2),
        "reference_p99_ms": round(median([r["reference"]["p99_ms"] for r in rounds]), 2),
        "ratio_by_round": [round(r["ratio"], 3) for r in rounds],
        "p99_ms_by_round": [round(r["actions"]["p99_ms"], 1) for r in rounds],
    }
    print(json.dumps(line), flush=True)
    short = [
        r["actions"]["outcomes"] for r in rounds if r["actions"]["outcomes"].get("placed") != UNITS
    ]
    if line["oversold"] or short:
        log(f"flash_sale_http: FAILED: {line}, outcomes {short}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
