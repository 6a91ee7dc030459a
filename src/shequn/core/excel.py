"""One way to write an operator's Excel workbook (openpyxl): bold frozen header, column widths,
money as numbers with a ¥ format (Excel can sum them), Shanghai wall-clock times, and any text
that looks like a formula kept as text (no formula injection from a member's name)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from . import timeutil


def local(moment: datetime | None) -> datetime | None:
    """Excel has no time zones: write the Shanghai wall-clock time."""
    return timeutil.to_local(moment).replace(tzinfo=None) if moment else None


def workbook(
    title: str,
    columns: Sequence[tuple[str, int]],
    rows: Iterable[Sequence[Any]],
    *,
    money_columns: Sequence[int] = (),
    time_columns: Sequence[int] = (),
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    sheet.append([name for name, _ in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, (_, width) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for values in rows:
        sheet.append(list(values))
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if cell.data_type == "f":  # text starting with "=" stays text, never a formula
                cell.data_type = "s"
        for index in money_columns:
            row[index].number_format = '"¥"#,##0.00'
        for index in time_columns:
            row[index].number_format = "yyyy-mm-dd hh:mm"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
