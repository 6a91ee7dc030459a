"""A sharer's commission on one order, through its life in the ledger:

    accrue (paid)            commission expense → pending
    reverse (refunded)       pending, else available, else a flagged receivable → expense
    unfreeze (freeze over)   pending → available
    withdraw                 available → in flight          (never more than available)
    payout succeeded         in flight → payout clearing
    payout failed            in flight → available

The commission on an order is always ``floor(rate × (paid − refunded))``: a refund gives back
exactly what takes the order's net commission down to that, so Σ commission ≤ rate × net paid
holds to the fen whatever the order of events. Every step is idempotent on its key.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum

from shequn.core.errors import InvalidInput
from shequn.members.models import Member
from shequn.orders.models import Order

from .ledger import chain_account, post, sharer_account
from .models import AccountKind, LedgerTransaction, Posting, TransactionKind

MAX_RATE_BP = 10_000  # basis points: 10,000 = 100 %


@dataclass(frozen=True)
class Rate:
    """A commission rate of ``weight / per`` basis points, kept as an exact fraction: an order's
    blend of its lines' rates (weighted by line totals over the subtotal), fixed fen per unit
    among them, loses nothing to rounding before the one final round-down to the fen."""

    weight: int
    per: int = 1

    @property
    def bp(self) -> int:
        """For display: the rate rounded down to a basis point."""
        return self.weight // self.per


def _exact(rate: int | Rate) -> Rate:
    exact = Rate(rate) if type(rate) is int else rate
    if (
        not isinstance(exact, Rate)
        or type(exact.weight) is not int
        or type(exact.per) is not int
        or exact.per < 1
        or not 0 <= exact.weight <= MAX_RATE_BP * exact.per
    ):
        raise InvalidInput("佣金比例须在 0-100% 之间", code="invalid_rate")
    return exact


def commission_for(net_paid_fen: int, rate_bp: int | Rate) -> int:
    """What a sharer earns on ``net_paid_fen`` at ``rate_bp`` (basis points, or an exact
    ``Rate``), rounded down to the fen: ``floor(net × weight / per / 10,000)``, computed in
    two parts so no intermediate grows past 64 bits (the bulk path does the same in SQL)."""
    rate = _exact(rate_bp)
    net = max(0, net_paid_fen)
    whole, part = divmod(rate.weight, rate.per)
    return (net * whole + net * part // rate.per) // MAX_RATE_BP


def _expense_key(order: Order, sharer: Member) -> str:
    return f"order:{order.pk}:sharer:{sharer.pk}"


def net_commission(order: Order, sharer: Member) -> int:
    """What the sharer holds from this order: accrued minus reversed (the expense's mirror)."""
    spent = Posting.objects.filter(
        transaction__order=order,
        transaction__member=sharer,
        account__kind=AccountKind.COMMISSION_EXPENSE,
    ).aggregate(total=Sum("amount_fen"))["total"]
    return -int(spent or 0)


def _moved(order: Order, sharer: Member, kind: str, account_kind: str) -> int:
    """Fen of this order's commission that transactions of ``kind`` added to ``account_kind``."""
    total = Posting.objects.filter(
        transaction__order=order,
        transaction__member=sharer,
        transaction__kind=kind,
        account__kind=account_kind,
    ).aggregate(total=Sum("amount_fen"))["total"]
    return int(total or 0)


def still_pending(order: Order, sharer: Member) -> int:
    """This order's commission that is still frozen in the sharer's pending account."""
    accrued = _moved(order, sharer, TransactionKind.ACCRUE, AccountKind.PENDING)
    reversed_ = -_moved(order, sharer, TransactionKind.REVERSE, AccountKind.PENDING)
    released = -_moved(order, sharer, TransactionKind.UNFREEZE, AccountKind.PENDING)
    return accrued - reversed_ - released


def accrue(*, order: Order, sharer: Member, net_paid_fen: int, rate_bp: int | Rate) -> int:
    """On payment: the order's commission goes to the sharer's pending account. Once per order
    and sharer: a repeated payment event returns what was accrued the first time (later refunds
    are ``reverse``'s business, not a reason to accrue a different amount)."""
    key = f"accrue:{_expense_key(order, sharer)}"
    if LedgerTransaction.objects.filter(key=key).exists():
        return _moved(order, sharer, TransactionKind.ACCRUE, AccountKind.PENDING)
    amount = commission_for(net_paid_fen, rate_bp)
    if amount == 0:
        return 0
    post(
        chain_id=order.chain_id,
        kind=TransactionKind.ACCRUE,
        key=key,
        legs=[
            (chain_account(order.chain_id, AccountKind.COMMISSION_EXPENSE), -amount),
            (sharer_account(sharer, AccountKind.PENDING), amount),
        ],
        order=order,
        member=sharer,
        memo=f"订单 {order.number} 佣金",
    )
    return amount


def reverse(
    *, order: Order, sharer: Member, net_paid_fen: int, rate_bp: int | Rate, event_key: str
) -> int:
    """After a refund (``net_paid_fen`` = paid − all refunded so far): give back what takes the
    order's commission down to the rate on what is left. From pending first, then available;
    what the sharer no longer holds becomes a flagged receivable. Returns the fen given back."""
    with transaction.atomic():
        give_back = net_commission(order, sharer) - commission_for(net_paid_fen, rate_bp)
        if give_back <= 0:
            return 0
        from_pending = min(give_back, still_pending(order, sharer))
        available = sharer_account(sharer, AccountKind.AVAILABLE)
        available.refresh_from_db()
        from_available = min(give_back - from_pending, available.balance_fen)
        owed = give_back - from_pending - from_available
        post(
            chain_id=order.chain_id,
            kind=TransactionKind.REVERSE,
            key=f"reverse:{event_key}:{_expense_key(order, sharer)}",
            legs=[
                (sharer_account(sharer, AccountKind.PENDING), -from_pending),
                (available, -from_available),
                (sharer_account(sharer, AccountKind.RECEIVABLE), -owed),  # the sharer's debt
                (chain_account(order.chain_id, AccountKind.COMMISSION_EXPENSE), give_back),
            ],
            order=order,
            member=sharer,
            flagged=owed > 0,
            memo=f"订单 {order.number} 退款追回佣金",
        )
    return give_back


def unfreeze(*, order: Order, sharer: Member) -> int:
    """The freeze period is over: what is still pending for this order becomes withdrawable."""
    with transaction.atomic():
        amount = still_pending(order, sharer)
        if amount <= 0:
            return 0
        post(
            chain_id=order.chain_id,
            kind=TransactionKind.UNFREEZE,
            key=f"unfreeze:{_expense_key(order, sharer)}",
            legs=[
                (sharer_account(sharer, AccountKind.PENDING), -amount),
                (sharer_account(sharer, AccountKind.AVAILABLE), amount),
            ],
            order=order,
            member=sharer,
        )
    return amount


def withdraw(*, sharer: Member, amount_fen: int, request_key: str) -> LedgerTransaction:
    """Move ``amount_fen`` out of what the sharer may withdraw, into "in flight"."""
    if type(amount_fen) is not int or amount_fen < 1:
        raise InvalidInput("提现金额须为正整数分", code="invalid_amount")
    return post(
        chain_id=sharer.chain_id,
        kind=TransactionKind.WITHDRAW,
        key=f"withdraw:{sharer.pk}:{request_key}",
        legs=[
            (sharer_account(sharer, AccountKind.AVAILABLE), -amount_fen),
            (sharer_account(sharer, AccountKind.IN_FLIGHT), amount_fen),
        ],
        member=sharer,
    )


def settle_payout(*, withdrawal: LedgerTransaction, succeeded: bool) -> LedgerTransaction:
    """The payout's outcome, once: money leaves (succeeded) or goes back to available. Both
    outcomes share one key, so a second, different report is refused as a conflict."""
    sharer = withdrawal.member
    if withdrawal.kind != TransactionKind.WITHDRAW or sharer is None:
        raise InvalidInput("不是提现交易", code="not_a_withdrawal")
    amount = int(
        withdrawal.postings.filter(account__kind=AccountKind.IN_FLIGHT).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    destination = (
        chain_account(sharer.chain_id, AccountKind.PAYOUT_CLEARING)
        if succeeded
        else sharer_account(sharer, AccountKind.AVAILABLE)
    )
    return post(
        chain_id=sharer.chain_id,
        kind=TransactionKind.PAYOUT_SUCCEEDED if succeeded else TransactionKind.PAYOUT_FAILED,
        key=f"payout:{withdrawal.key}",
        legs=[(sharer_account(sharer, AccountKind.IN_FLIGHT), -amount), (destination, amount)],
        member=sharer,
    )


def adjust(
    *, sharer: Member, amount_fen: int, reason: str, request_key: str, acting_user: object = None
) -> LedgerTransaction:
    """A person's correction, flagged for review: credit (positive) or debit (negative) the
    sharer's available balance against the commission expense. A debit never takes available
    below zero."""
    if type(amount_fen) is not int or amount_fen == 0:
        raise InvalidInput("调整金额须为非零整数分", code="invalid_amount")
    reason = (reason or "").strip()
    if not reason or len(reason) > 100:
        raise InvalidInput("请填写调整原因(不超过100字)", code="invalid_reason")
    return post(
        chain_id=sharer.chain_id,
        kind=TransactionKind.ADJUSTMENT,
        key=f"adjust:{sharer.pk}:{request_key}",
        legs=[
            (chain_account(sharer.chain_id, AccountKind.COMMISSION_EXPENSE), -amount_fen),
            (sharer_account(sharer, AccountKind.AVAILABLE), amount_fen),
        ],
        member=sharer,
        flagged=True,
        memo=reason,
        created_by=acting_user,
    )
