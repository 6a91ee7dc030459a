"""Orders as an Excel workbook (openpyxl): what operators reconcile and share. Amounts are
numbers in yuan with a ¥ format (so Excel can sum them), times in Asia/Shanghai, and phones
masked exactly as the console shows them to this role."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from shequn.core import timeutil
from shequn.core.money import fen_to_yuan
from shequn.members.queries import phone_for
from shequn.org.models import Staff

from .models import Order

COLUMNS = (
    ("订单号", 24),
    ("门店", 16),
    ("会员手机", 16),
    ("商品", 40),
    ("金额(元)", 12),
    ("状态", 10),
    ("履约方式", 10),
    ("来源渠道", 12),
    ("来源社群", 20),
    ("素材编号", 14),
    ("下单时间", 20),
    ("支付时间", 20),
    ("提货时间", 20),
)


def _local(moment: datetime | None) -> datetime | None:
    """Excel has no time zones: write the Shanghai wall-clock time."""
    return timeutil.to_local(moment).replace(tzinfo=None) if moment else None


def orders_workbook(staff: Staff, orders: Iterable[Order]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "订单"
    sheet.append([title for title, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for order in orders:
        sheet.append(
            [
                order.number,
                order.store.name,
                phone_for(staff, order.member),
                "、".join(f"{line.product_name}×{line.quantity}" for line in order.lines.all()),
                fen_to_yuan(order.total_fen),
                order.get_status_display(),
                order.get_fulfilment_display(),
                order.get_channel_display(),
                order.source_group.name if order.source_group else "",
                order.content_ref,
                _local(order.created_at),
                _local(order.paid_at),
                _local(order.fulfilled_at),
            ]
        )
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if cell.data_type == "f":  # a name starting with "=" is text, never a formula
                cell.data_type = "s"
        row[4].number_format = '"¥"#,##0.00'
        for cell in row[10:13]:
            cell.number_format = "yyyy-mm-dd hh:mm"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
