"""What every command shares: the one-line failure and the progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def _fail(message: str, code: int = 2) -> int:
    print(f"shequn: {message}", file=sys.stderr)
    return code


def _progress_printer() -> tuple[Any, Callable[[str, int, int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}

    def update(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = progress.add_task(step, total=total)
        progress.update(tasks[step], completed=done, total=total)

    return progress, update
