"""Posting to the ledger: the one way money moves between accounts (see ``models``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum

from shequn.core.errors import Conflict, InvalidInput, RuleViolation
from shequn.members.models import Member

from .models import MAY_GO_NEGATIVE, Account, AccountKind, LedgerTransaction, Posting


class InsufficientBalance(RuleViolation):
    default_code = "insufficient_balance"


def account(
    chain_id: int, kind: str, member: Member | None = None, staff: User | None = None
) -> Account:
    """The chain's account of ``kind``, or ``member``'s, or a staff member's (``staff``); made
    on first use (race-safe)."""
    party = {"chain_id": chain_id, "kind": kind, "member": member, "staff": staff}
    found = Account.objects.filter(**party).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Account.objects.create(**party, may_go_negative=kind in MAY_GO_NEGATIVE)
    except IntegrityError:  # made at the same moment by another request
        return Account.objects.get(**party)


def sharer_account(member: Member, kind: str) -> Account:
    return account(member.chain_id, kind, member)


def chain_account(chain_id: int, kind: str) -> Account:
    return account(chain_id, kind)


def staff_account(chain_id: int, user: User, kind: str = AccountKind.STAFF_EARNED) -> Account:
    return account(chain_id, kind, staff=user)


Leg = tuple[Account, int]


def post(
    *,
    chain_id: int,
    kind: str,
    key: str,
    legs: Sequence[Leg],
    memo: str = "",
    flagged: bool = False,
    **refs: Any,
) -> LedgerTransaction:
    """Write one balanced transaction, or return the one already written under ``key`` (the
    same legs: a retry; other legs: a Conflict). Balances move by guarded UPDATEs in account
    order; one that would take an account below zero refuses the whole transaction."""
    legs = [(acc, amount) for acc, amount in legs if amount]
    if len(legs) < 2 or sum(amount for _, amount in legs) != 0:
        raise InvalidInput("账务交易须至少两笔分录且合计为零", code="unbalanced_transaction")
    if any(type(amount) is not int or acc.chain_id != chain_id for acc, amount in legs):
        raise InvalidInput("分录金额须为整数分, 且属于同一连锁", code="invalid_posting")
    if not key or len(key) > 120:
        raise InvalidInput("账务交易须有 1-120 字的幂等键", code="invalid_key")
    existing = _existing(key, legs)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            txn = LedgerTransaction.objects.create(
                chain_id=chain_id, kind=kind, key=key, memo=memo[:200], flagged=flagged, **refs
            )
            Posting.objects.bulk_create(
                Posting(transaction=txn, account=acc, amount_fen=amount) for acc, amount in legs
            )
            for acc, amount in sorted(legs, key=lambda leg: leg[0].pk):  # one lock order for all
                guard = Q(may_go_negative=True) | Q(balance_fen__gte=-amount)
                if not Account.objects.filter(guard, pk=acc.pk).update(
                    balance_fen=F("balance_fen") + amount
                ):
                    raise InsufficientBalance(
                        f"{acc.get_kind_display()}余额不足", details={"account": acc.pk}
                    )
    except IntegrityError:  # the same key written at the same moment: that one stands
        replay = _existing(key, legs)
        if replay is None:
            raise
        return replay
    return txn


def _existing(key: str, legs: Sequence[Leg]) -> LedgerTransaction | None:
    txn = LedgerTransaction.objects.filter(key=key).first()
    if txn is None:
        return None
    written = sorted(txn.postings.values_list("account_id", "amount_fen"))
    if written != sorted((acc.pk, amount) for acc, amount in legs):
        raise Conflict(f"账务交易 {key} 已以不同金额入账", code="ledger_key_reused")
    return txn


def balance_from_postings(acc: Account) -> int:
    """What the postings say the account holds (the stored balance must agree)."""
    return int(acc.postings.aggregate(total=Sum("amount_fen"))["total"] or 0)


__all__ = [
    "AccountKind",
    "InsufficientBalance",
    "account",
    "balance_from_postings",
    "chain_account",
    "post",
    "sharer_account",
    "staff_account",
]
