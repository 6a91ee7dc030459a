"""Staff rewards in the same ledger as sharers' commissions.

- A cashier's recruitment reward (步步高, ``groups.rewards``): booked when the member their code
  brought joins the group, in the join's own transaction — chain's reward expense → the
  cashier's "earned" account, once per reward row (which is once per group and member, ever).
- A group owner's reward (seed 000: owners who push products after an expert talk): a rate
  (the chain policy's ``group_owner_bp``) of every paid order placed from their group, booked at
  payment and reversed in proportion on refunds, so it never exceeds the rate on what was
  paid net of refunds.
- Paid with wages: ``pay_staff_rewards`` moves every positive earned balance to the chain's
  payroll clearing under one key per (label, account), so a month is paid once.

Staff are paid through payroll, not the payout gateway: a claw-back after payment leaves the
earned balance below zero (netted against next month's) and is flagged for review.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum

from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput
from shequn.groups.models import RecruitmentReward
from shequn.orders.models import Order
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .commission import commission_for
from .ledger import chain_account, post, staff_account
from .models import (
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from .policy import chain_policy


def book_recruitment_reward(reward: RecruitmentReward) -> LedgerTransaction:
    """The reward row was written (inside the join's transaction): the money follows it."""
    chain_id = reward.store.chain_id
    return post(
        chain_id=chain_id,
        kind=TransactionKind.RECRUITMENT_REWARD,
        key=f"recruit:{reward.pk}",
        legs=[
            (chain_account(chain_id, AccountKind.REWARD_EXPENSE), -reward.amount_fen),
            (staff_account(chain_id, reward.staff), reward.amount_fen),
        ],
        staff=reward.staff,
        memo=f"拉新奖励: {reward.group.name} 第 {reward.member_ordinal} 位成员",
    )


def book_recruitment_rewards(rewards: list[RecruitmentReward], chain_id: int) -> int:
    """Many reward rows at once (the demo's bulk-loaded joins), each through
    ``book_recruitment_reward`` — the one way these rewards reach the ledger — in one database
    transaction. Rows already booked are skipped. Returns how many were booked."""
    keys = {f"recruit:{reward.pk}": reward for reward in rewards}
    done = set(LedgerTransaction.objects.filter(key__in=keys).values_list("key", flat=True))
    todo = [r for key, r in keys.items() if key not in done and r.store.chain_id == chain_id]
    with transaction.atomic():
        for reward in todo:
            book_recruitment_reward(reward)
    return len(todo)


def group_owner_rate(chain_id: int) -> int:
    return chain_policy(chain_id).group_owner_bp


def _owner_of(order: Order) -> User | None:
    if order.source_group_id is None:
        return None
    return order.source_group.owner if order.source_group else None


def accrue_group_owner_reward(order: Order) -> int:
    """The order was paid: the owner of the group it came from earns the chain's rate on it."""
    owner = _owner_of(order)
    rate = group_owner_rate(order.chain_id) if owner is not None else 0
    amount = commission_for(order.total_fen, rate) if rate else 0
    if owner is None or amount == 0:
        return 0
    post(
        chain_id=order.chain_id,
        kind=TransactionKind.GROUP_OWNER_REWARD,
        key=f"owner:order:{order.pk}",
        legs=[
            (chain_account(order.chain_id, AccountKind.REWARD_EXPENSE), -amount),
            (staff_account(order.chain_id, owner), amount),
        ],
        order=order,
        staff=owner,
        memo=f"群主奖励: 订单 {order.number}",
    )
    return amount


def _owner_reward_moved(order: Order, kind: str) -> int:
    total = Posting.objects.filter(
        transaction__order=order,
        transaction__kind=kind,
        account__kind=AccountKind.STAFF_EARNED,
    ).aggregate(total=Sum("amount_fen"))["total"]
    return int(total or 0)


def reverse_group_owner_reward(order: Order, *, net_paid_fen: int, event_key: str) -> int:
    """A refund succeeded: the owner's reward comes down to its share of what is left paid,
    ``floor(accrued × net / total)`` — never more than the rate on the net. Returns fen back."""
    owner = _owner_of(order)
    if owner is None:
        return 0
    with transaction.atomic():
        accrued = _owner_reward_moved(order, TransactionKind.GROUP_OWNER_REWARD)
        held = accrued + _owner_reward_moved(order, TransactionKind.GROUP_OWNER_REVERSE)
        target = accrued * max(0, net_paid_fen) // max(1, order.total_fen)
        give_back = held - target
        if give_back <= 0:
            return 0
        earned = staff_account(order.chain_id, owner)
        earned.refresh_from_db()
        post(
            chain_id=order.chain_id,
            kind=TransactionKind.GROUP_OWNER_REVERSE,
            key=f"owner-reverse:{event_key}:order:{order.pk}",
            legs=[
                (earned, -give_back),
                (chain_account(order.chain_id, AccountKind.REWARD_EXPENSE), give_back),
            ],
            order=order,
            staff=owner,
            flagged=earned.balance_fen < give_back,  # already paid with wages: netted later
            memo=f"群主奖励追回: 订单 {order.number} 退款",
        )
    return give_back


def pay_staff_rewards(*, acting: Staff, label: str) -> dict[str, int]:
    """Pay every staff member's positive earned balance with this month's wages (``label``,
    e.g. "2026-11"): once per (label, staff member), however often it is run."""
    require_perm(acting, Perm.MANAGE_COMMISSIONS)
    label = (label or "").strip()
    if not label or len(label) > 32:
        raise InvalidInput("批次名称为 1-32 个字符, 如 2026-11", code="invalid_label")
    chain_id = acting.node.chain_id
    paid = paid_fen = 0
    accounts = Account.objects.filter(
        chain_id=chain_id, kind=AccountKind.STAFF_EARNED, balance_fen__gt=0
    ).select_related("staff")
    for earned in accounts.order_by("id"):
        key = f"payroll:{label}:{earned.pk}"
        if LedgerTransaction.objects.filter(key=key).exists():
            continue
        with transaction.atomic():
            earned = (
                Account.objects.select_for_update(of=("self",))
                .select_related("staff")
                .get(pk=earned.pk)
            )
            if earned.balance_fen <= 0:
                continue
            post(
                chain_id=chain_id,
                kind=TransactionKind.STAFF_REWARD_PAID,
                key=key,
                legs=[
                    (earned, -earned.balance_fen),
                    (chain_account(chain_id, AccountKind.PAYROLL_CLEARING), earned.balance_fen),
                ],
                staff=earned.staff,
                created_by=acting.user,
                memo=f"{label} 随工资发放",
            )
        paid += 1
        paid_fen += earned.balance_fen
    record_audit(
        acting.user,
        "referrals.staff_rewards_paid",
        scope_path=acting.node.path,
        details={"label": label, "staff": paid, "amount_fen": paid_fen},
    )
    return {"staff": paid, "amount_fen": paid_fen}
