"""Reads for sharers (their own earnings) and for staff (sharers and commissions in scope)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from shequn.core import timeutil
from shequn.core.errors import InvalidInput
from shequn.members.models import Member
from shequn.org.models import Staff
from shequn.org.roles import Perm, has_perm
from shequn.org.scoping import get_scoped, require_perm, scoped

from .ledger import sharer_account
from .models import (
    AccountKind,
    CommissionRule,
    LedgerTransaction,
    OrderCommission,
    Posting,
    ReferralSettings,
    Sharer,
    TransactionKind,
)
from .policy import chain_policy


@dataclass(frozen=True)
class Earnings:
    pending_fen: int
    available_fen: int
    in_flight_fen: int
    paid_out_fen: int
    owed_fen: int  # a claw-back the sharer did not hold (shown, never hidden)


def earnings(member: Member) -> Earnings:
    paid_out = -(
        Posting.objects.filter(
            transaction__member=member,
            transaction__kind=TransactionKind.PAYOUT_SUCCEEDED,
            account__kind=AccountKind.IN_FLIGHT,
        ).aggregate(total=Sum("amount_fen"))["total"]
        or 0
    )
    return Earnings(
        pending_fen=sharer_account(member, AccountKind.PENDING).balance_fen,
        available_fen=sharer_account(member, AccountKind.AVAILABLE).balance_fen,
        in_flight_fen=sharer_account(member, AccountKind.IN_FLIGHT).balance_fen,
        paid_out_fen=paid_out,
        owed_fen=-sharer_account(member, AccountKind.RECEIVABLE).balance_fen,
    )


def orders_brought(member: Member, limit: int = 100) -> QuerySet[OrderCommission]:
    return (
        OrderCommission.objects.filter(member=member)
        .select_related("order__store")
        .order_by("-created_at", "-id")[:limit]
    )


def withdrawals(member: Member, limit: int = 50) -> QuerySet[LedgerTransaction]:
    return LedgerTransaction.objects.filter(member=member, kind="withdraw").order_by("-id")[:limit]


def visible_sharers(staff: Staff) -> QuerySet[Sharer]:
    """Sharers whose home store is in the caller's part of the tree, for the staff who see the
    orders they bring (分销): not a supplier's account, which sits at the chain's root."""
    if not has_perm(staff.role, Perm.VIEW_ORDERS):
        return Sharer.objects.none()
    return (
        Sharer.objects.filter(
            chain_id=staff.node.chain_id,
            member__home_store__path__startswith=staff.node.path,
        )
        .select_related("member__home_store", "parent__member")
        .order_by("-applied_at", "-id")
    )


def access_sharer(staff: Staff, sharer_id: object) -> Sharer:
    """One sharer in scope, else NotFound (the same answer for missing and foreign)."""
    return get_scoped(visible_sharers(staff), staff, sharer_id)


def visible_rules(staff: Staff) -> QuerySet[CommissionRule]:
    """The chain's commission rates, for the staff who see the commissions (not suppliers)."""
    if not has_perm(staff.role, Perm.VIEW_ORDERS):
        return CommissionRule.objects.none()
    return CommissionRule.objects.filter(chain_id=staff.node.chain_id).order_by("-id")


def referral_settings(staff: Staff) -> ReferralSettings:
    """The chain's 分销设置, for the staff who see the commissions (a supplier: 403)."""
    require_perm(staff, Perm.VIEW_ORDERS)
    return chain_policy(staff.node.chain_id)


def visible_commissions(staff: Staff) -> QuerySet[OrderCommission]:
    return scoped(
        OrderCommission.objects.select_related("order__store", "member"),
        staff,
        Perm.VIEW_ORDERS,
    )


# --- months: statements and leaderboards ----------------------------------------------------------
def month_bounds(month: str) -> tuple[datetime, datetime]:
    """ "2026-11" → [its first moment, the next month's) in Beijing time, as aware datetimes."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month") from None
    timeutil.supported_day(first)
    after = (first + timedelta(days=32)).replace(day=1)
    return timeutil.local_day_bounds(first)[0], timeutil.local_day_bounds(after)[0]


def month_commissions(staff: Staff, month: str) -> QuerySet[OrderCommission]:
    """The commissions booked in ``month`` on orders in the caller's scope."""
    start, end = month_bounds(month)
    return (
        visible_commissions(staff)
        .filter(created_at__gte=start, created_at__lt=end)
        .select_related("order__store", "member")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    member: Member
    orders: int  # orders they brought themselves (level 1)
    commission_fen: int  # both levels, as booked (before claw-backs)
    share: float  # of the leader's commission, for the bar


def leaderboard(staff: Staff, month: str, limit: int = 20) -> list[LeaderRow]:
    """The month's top sharers in the caller's scope, by commission booked."""
    start, end = month_bounds(month)
    totals = list(
        visible_commissions(staff)
        .filter(created_at__gte=start, created_at__lt=end)
        .exclude(status="rejected")
        .values("member_id")
        .annotate(fen=Sum("accrued_fen"), orders=Count("id", filter=Q(level=1)))
        .order_by("-fen", "member_id")[:limit]
    )
    members = Member.objects.in_bulk([row["member_id"] for row in totals])
    top = max((row["fen"] for row in totals), default=0) or 1
    return [
        LeaderRow(rank, members[row["member_id"]], row["orders"], row["fen"], row["fen"] / top)
        for rank, row in enumerate(totals, start=1)
    ]


@dataclass(frozen=True)
class MonthStatement:
    month: str
    orders: int
    accrued_fen: int
    clawed_back_fen: int

    @property
    def net_fen(self) -> int:
        return self.accrued_fen - self.clawed_back_fen


def monthly_statements(member: Member, months: int = 12) -> list[MonthStatement]:
    """A sharer's own statement per month (Beijing time), newest first: orders brought,
    commission booked, what refunds took back."""
    tz = timeutil.local_tz()
    booked = {
        row["month"].date(): row
        for row in OrderCommission.objects.filter(member=member)
        .annotate(month=TruncMonth("created_at", tzinfo=tz))
        .values("month")
        .annotate(orders=Count("id"), fen=Sum("accrued_fen"))
    }
    clawed = {
        row["month"].date(): int(row["fen"] or 0)  # the expense gets back what was reversed
        for row in Posting.objects.filter(
            transaction__member=member,
            transaction__kind=TransactionKind.REVERSE,
            account__kind=AccountKind.COMMISSION_EXPENSE,
        )
        .annotate(month=TruncMonth("transaction__created_at", tzinfo=tz))
        .values("month")
        .annotate(fen=Sum("amount_fen"))
    }
    months_seen = sorted(set(booked) | set(clawed), reverse=True)[:months]
    return [
        MonthStatement(
            f"{month:%Y-%m}",
            int(booked[month]["orders"]) if month in booked else 0,
            int(booked[month]["fen"] or 0) if month in booked else 0,
            clawed.get(month, 0),
        )
        for month in months_seen
    ]
