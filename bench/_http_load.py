"""The load generator of bench/flash_sale_http.py, run in its own process: N keep-alive
connections (one thread each) POST the attempts listed in a job file and report throughput,
latency percentiles and outcomes as one JSON object on stdout.

Usage: python bench/_http_load.py JOB.json LEG CONNECTIONS   (LEG: actions | reference)
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter


def main() -> int:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())  # noqa: SIM115
    leg, connections = sys.argv[2], int(sys.argv[3])
    attempts = len(job["members"])
    numbers = iter(range(attempts))
    lock = threading.Lock()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    def request(n: int) -> tuple[str, str, dict[str, str]]:
        member_id, token = job["members"][n]
        if leg == "actions":
            body = {
                "store_id": job["store_id"],
                "lines": [{"sku_id": job["sku_id"], "quantity": 1}],
                "idempotency_key": f"k{n}",
                "flash_sale_id": job["sale_id"],
            }
            headers = {"X-Member-Token": token}
            return "/api/member/orders", json.dumps(body), headers
        body = {
            "n": n,
            "member_id": member_id,
            "store_id": job["store_id"],
            "sku_id": job["sku_id"],
        }
        return "/bench/reference-flash", json.dumps(body), {}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", job["port"], timeout=60)
        mine: list[float] = []
        seen: Counter[str] = Counter()
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                break
            url, body, headers = request(n)
            started = time.perf_counter()
            conn.request("POST", url, body, {"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - started)
            if response.status == 201:
                seen["placed"] += 1
            else:
                try:
                    seen[json.loads(payload).get("code", str(response.status))] += 1
                except ValueError:
                    seen[str(response.status)] += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            outcomes.update(seen)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: int) -> float:
        return 1000 * ordered[max(0, -(-q * len(ordered) // 100) - 1)]

    print(
        json.dumps(
            {
                "wall_s": wall,
                "per_s": outcomes["placed"] / wall,
                "p50_ms": pct(50),
                "p99_ms": pct(99),
                "outcomes": dict(outcomes),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
