"""``shequn demand classify``'s contract, kept stable for the tools that call it:

    in   one JSON object per line: {"id": ..., "text": "..."}      (id: any JSON value)
    out  one JSON object per input line, in order: {"id": ..., "label": "...", "score": 0.93}

Lines are read and answered in chunks, so a long stream flows. A line that is not such an object
stops the run with its line number (exit 2); what was answered before it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from .classifier import classify

CHUNK = 2000
MAX_TEXT = 10_000  # characters: a chat message, not a book


class BadLine(ValueError):
    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"第 {number} 行: {reason}")


def _parse(number: int, line: str) -> tuple[Any, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(number, f"不是合法的 JSON ({exc.msg})") from None
    if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("text"), str):
        raise BadLine(number, '须为 {"id": ..., "text": "..."}')
    return row["id"], row["text"][:MAX_TEXT]


def classify_lines(lines: Iterable[str], out: IO[str]) -> int:
    """Answer every line of ``lines`` on ``out``; returns how many were answered."""
    answered = 0
    batch: list[tuple[Any, str]] = []

    def flush() -> None:
        nonlocal answered
        if not batch:
            return
        results = classify([text for _, text in batch])
        out.writelines(
            json.dumps({"id": ident, "label": r.label, "score": r.score}, ensure_ascii=False) + "\n"
            for (ident, _), r in zip(batch, results, strict=True)
        )
        out.flush()
        answered += len(batch)
        batch.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            batch.append(_parse(number, line))
        except BadLine:
            flush()
            raise
        if len(batch) >= CHUNK:
            flush()
    flush()
    return answered
