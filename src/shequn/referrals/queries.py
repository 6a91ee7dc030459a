"""Reads for sharers (their own earnings) and for staff (sharers and commissions in scope)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet, Sum

from shequn.core.errors import NotFound
from shequn.members.models import Member
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import scoped

from .ledger import sharer_account
from .models import (
    AccountKind,
    CommissionRule,
    LedgerTransaction,
    OrderCommission,
    Posting,
    Sharer,
    TransactionKind,
)


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
    """Sharers whose home store is in the caller's part of the tree."""
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
    if type(sharer_id) is not int:
        raise NotFound("推客不存在")
    found = visible_sharers(staff).filter(pk=sharer_id).first()
    if found is None:
        raise NotFound("推客不存在")
    return found


def visible_rules(staff: Staff) -> QuerySet[CommissionRule]:
    return CommissionRule.objects.filter(chain_id=staff.node.chain_id).order_by("-id")


def visible_commissions(staff: Staff) -> QuerySet[OrderCommission]:
    return scoped(
        OrderCommission.objects.select_related("order__store", "member"),
        staff,
        Perm.VIEW_ORDERS,
    )
