"""A month's commission statement as an Excel workbook: one row per commission on an order in
the caller's scope, phones masked as the console shows them to this role. Every export is in
the audit log (``export_statement``)."""

from __future__ import annotations

from collections.abc import Iterable

from shequn.core.excel import local, workbook
from shequn.core.money import fen_to_yuan
from shequn.members.actions import record_export
from shequn.members.queries import phone_for
from shequn.org.models import Staff

from .models import OrderCommission

COLUMNS = (
    ("推客手机", 16),
    ("层级", 6),
    ("订单号", 24),
    ("门店", 16),
    ("实付(元)", 12),
    ("佣金比例", 10),
    ("佣金(元)", 12),
    ("状态", 14),
    ("待审核原因", 24),
    ("入账时间", 20),
    ("可解冻时间", 20),
)


def statement_workbook(staff: Staff, rows: Iterable[OrderCommission]) -> bytes:
    return workbook(
        "佣金明细",
        COLUMNS,
        (
            [
                phone_for(staff, row.member),
                f"{row.level} 级",
                row.order.number,
                row.order.store.name,
                fen_to_yuan(row.base_fen),
                f"{row.rate_bp / 100:.2f}%",
                fen_to_yuan(row.accrued_fen),
                row.get_status_display(),
                row.hold_reason,
                local(row.created_at),
                local(row.unfreeze_at),
            ]
            for row in rows
        ),
        money_columns=(4, 6),
        time_columns=(9, 10),
    )


def export_statement(*, acting: Staff, month: str, rows: Iterable[OrderCommission]) -> bytes:
    """``statement_workbook``, recorded as one ``referrals.statement_exported`` audit event."""
    listed = list(rows)
    return record_export(
        acting=acting,
        action="referrals.statement_exported",
        build=lambda: statement_workbook(acting, listed),
        rows=len(listed),
        month=month,
    )
