"""Orders as an Excel workbook (openpyxl): what operators reconcile and share. Amounts are
numbers in yuan with a ¥ format (so Excel can sum them), times in Asia/Shanghai, and phones
masked exactly as the console shows them to this role. Personal data leaving the system: every
export is in the audit log (``export_orders``)."""

from __future__ import annotations

from collections.abc import Iterable

from shequn.core.excel import local, workbook
from shequn.core.money import fen_to_yuan
from shequn.members.actions import record_export
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


def orders_workbook(staff: Staff, orders: Iterable[Order]) -> bytes:
    return workbook(
        "订单",
        COLUMNS,
        (
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
                local(order.created_at),
                local(order.paid_at),
                local(order.fulfilled_at),
            ]
            for order in orders
        ),
        money_columns=(4,),
        time_columns=(10, 11, 12),
    )


def export_orders(*, acting: Staff, orders: Iterable[Order], filters: dict[str, str]) -> bytes:
    """``orders_workbook``, recorded as one ``orders.exported`` audit event (the filters)."""
    rows = list(orders)
    return record_export(
        acting=acting,
        action="orders.exported",
        build=lambda: orders_workbook(acting, rows),
        rows=len(rows),
        filters=filters,
    )
