"""``shequn demand classify``'s contract, kept stable for the tools that call it:

    in   one JSON object per line: {"id": ..., "text": "..."}      (id: any JSON value)
    out  one JSON object per input line, in order: {"id": ..., "label": "...", "score": 0.93}

Lines are read and answered in chunks, so a long stream flows. A line that is not such an object
stops the run with its line number (exit 2); what was answered before it stands. "Not such an
object" is anything the run could not answer faithfully: bytes that are not UTF-8 (read as bytes,
never patched into text), nesting deeper than the parser goes, a number past Python's digit
limit, an id no UTF-8 answer can carry (a lone surrogate) — never a crash with exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO

from .classifier import classify

CHUNK = 2000
MAX_TEXT = 10_000  # characters: a chat message, not a book


class BadLine(ValueError):
    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"第 {number} 行: {reason}")


def _parse(number: int, line: str | bytes) -> tuple[str, str]:
    """The line's id, already as the JSON its answer carries (so a line is refused here, never
    half-way through writing its answer), and its text."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLine(number, "不是 UTF-8 编码的文本") from None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(number, f"不是合法的 JSON ({exc.msg})") from None
    except RecursionError:
        raise BadLine(number, "不是可读的 JSON (嵌套过深)") from None
    except ValueError:  # an integer past Python's 4,300 digits
        raise BadLine(number, "不是合法的 JSON (数字过长)") from None
    if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("text"), str):
        raise BadLine(number, '须为 {"id": ..., "text": "..."}')
    try:
        ident = json.dumps(row["id"], ensure_ascii=False)
        ident.encode("utf-8")
    except RecursionError:
        raise BadLine(number, "id 嵌套过深") from None
    except UnicodeEncodeError:
        raise BadLine(number, "id 含有无法编码的字符 (孤立的代理项)") from None
    return ident, row["text"][:MAX_TEXT]


def classify_lines(lines: Iterable[str | bytes], out: IO[str]) -> int:
    """Answer every line of ``lines`` (text, or bytes as a pipe gives them: then a line that is
    not UTF-8 is named, not patched) on ``out``; returns how many were answered."""
    answered = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal answered
        if not batch:
            return
        results = classify([text for _, text in batch])
        out.writelines(  # as json.dumps({"id": …, "label": …, "score": …}) writes it
            f'{{"id": {ident}, "label": {json.dumps(r.label)}, "score": {json.dumps(r.score)}}}\n'
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
