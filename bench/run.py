"""`make bench`: runs every benchmark under bench/ and prints one JSON line per measurement.

Each benchmark module (every bench/*.py except this one and ``_private.py`` helpers) runs in its
own subprocess from the project root; its stdout (the JSON lines) passes straight through, its
stderr carries progress. The exit status is non-zero if any benchmark fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def benchmark_modules() -> list[Path]:
    return sorted(
        path
        for path in BENCH_DIR.glob("*.py")
        if path.name != Path(__file__).name and not path.name.startswith("_")
    )


def main() -> int:
    failed: list[str] = []
    for module in benchmark_modules():
        started = time.perf_counter()
        print(f"bench: running {module.stem}", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(module)], cwd=ROOT, check=False)  # noqa: S603
        elapsed = time.perf_counter() - started
        status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"bench: {module.stem} {status} in {elapsed:.1f} s", file=sys.stderr, flush=True)
        if result.returncode != 0:
            failed.append(module.stem)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
