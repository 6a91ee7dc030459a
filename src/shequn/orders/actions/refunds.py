"""Refunds: the requests (a clerk's, a member's before pickup, the platform's own for a team
that did not form), the outbox that submits them to the gateway after commit and the sweep that
resubmits what never went out, and the refund results the platform reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum

from shequn.catalog.stock import release_stock
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.demand.preorders import member_refund_blocker, on_preorder_refund_opened
from shequn.members.models import Member
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm
from shequn.promotions.groupbuy import on_refund_opened
from shequn.referrals.actions import reverse_order_commissions
from shequn.referrals.staff_rewards import reverse_group_owner_reward

from ..models import Order, OrderStatus, Payment, Refund, RefundStatus
from ..states import transition
from ._common import (
    PaymentMismatch,
    _apply_to_lines,
    _claim_notification,
    _finish_notification,
    _release_promotions,
    logger,
)


def _refund_in_flight(order: Order) -> bool:
    return Refund.objects.filter(
        order=order, status__in=(RefundStatus.PENDING, RefundStatus.ABNORMAL)
    ).exists()


def request_refund(
    *, acting: Staff, order: Order, amount_fen: int, reason: str, payment: Payment | None = None
) -> Refund:
    """Open a refund of ``amount_fen`` against one payment of the order.

    Σ refunds ≤ paid is kept by the database: the payment's ``refunded_fen`` only grows through a
    guarded UPDATE (``refunded_fen + amount <= amount_fen``) under a CHECK constraint, so two
    clerks refunding at once can never exceed what was paid. An order paid twice must name the
    payment (the duplicate is marked ``refund_required``). The call to the gateway happens after
    commit (outbox), never inside this transaction.
    """
    require_perm(acting, Perm.MANAGE_ORDERS)
    return _open_refund(
        order=order, amount_fen=amount_fen, reason=reason, payment=payment, staff=acting
    )


def request_member_refund(*, member: Member, order: Order, reason: str) -> Refund:
    """A member takes an order back before pickup: the whole amount, at once — the units have
    not left the shelf, so there is nothing for the store to check. After pickup the store
    decides (``request_refund``)."""
    if order.member_id != member.pk:
        raise NotFound("订单不存在")
    if order.status != OrderStatus.PAID:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 不能在线退款; 已提货的订单请联系门店",
            code="illegal_transition",
        )
    if _refund_in_flight(order):
        raise RuleViolation("该订单的退款正在处理中", code="refund_in_progress")
    blocker = member_refund_blocker(order)
    if blocker is not None:
        raise RuleViolation(blocker, code="preorder_converted")
    payment = order.payments.filter(refund_required=False).order_by("id").first()
    if payment is None:
        raise RuleViolation("订单未支付, 无需退款", code="not_paid")
    return _open_refund(
        order=order,
        amount_fen=payment.amount_fen - payment.refunded_fen,
        reason=reason,
        payment=payment,
        member=member,
    )


def refund_whole_order(*, order: Order, reason: str) -> Refund | None:
    """A refund the platform owes without anyone asking (a group-buy team that did not form):
    what is left of the order's payment. None when nothing is left (already refunded)."""
    payment = order.payments.filter(refund_required=False).order_by("id").first()
    if payment is None or payment.amount_fen <= payment.refunded_fen:
        return None
    return _open_refund(
        order=order,
        amount_fen=payment.amount_fen - payment.refunded_fen,
        reason=reason,
        payment=payment,
    )


def _open_refund(
    *,
    order: Order,
    amount_fen: int,
    reason: str,
    payment: Payment | None,
    staff: Staff | None = None,
    member: Member | None = None,
) -> Refund:
    """The one way a refund record comes to be, for whoever asked (a clerk or the member)."""
    actor = staff.user if staff else None
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 1:
        raise InvalidInput("退款金额须为正整数分", code="invalid_amount")
    reason = (reason or "").strip()
    if not reason or len(reason) > 100:
        raise InvalidInput("请填写退款原因(不超过100字)", code="invalid_reason")
    payments = list(order.payments.order_by("id"))
    if payment is None:
        if not payments:
            raise RuleViolation("订单未支付, 无需退款", code="not_paid")
        if len(payments) > 1:
            raise InvalidInput(
                "该订单有多笔支付, 请指定要退款的支付(重复支付标记为需退款)",
                code="payment_required",
            )
        payment = payments[0]
    elif payment.order_id != order.pk:
        raise NotFound("支付记录不存在")
    with transaction.atomic():
        # Lock order: order row first (as pickups and refund results do), then the payment.
        locked = Order.objects.select_for_update(of=("self",)).filter(pk=order.pk).first()
        if member is not None and (
            locked is None or locked.status != OrderStatus.PAID or _refund_in_flight(order)
        ):  # the pickup (or another refund) got in between the member's read and this lock
            raise RuleViolation("订单状态已变化, 请刷新后再试", code="order_changed")
        reserved = Payment.objects.filter(
            pk=payment.pk, refunded_fen__lte=F("amount_fen") - amount_fen
        ).update(refunded_fen=F("refunded_fen") + amount_fen)
        if not reserved:
            payment.refresh_from_db()
            raise RuleViolation(
                f"可退金额不足: 已支付 {payment.amount_fen} 分, 已退或退款中 {payment.refunded_fen} 分",
                code="refund_exceeds_payment",
            )
        sequence = Refund.objects.filter(payment=payment).count() + 1  # payment row is locked
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            out_refund_no=f"R{order.number}P{payment.pk}N{sequence}",
            amount_fen=amount_fen,
            reason=reason,
            requested_by=actor,
        )
        paid, refunded = Payment.objects.filter(pk=payment.pk).values_list(
            "amount_fen", "refunded_fen"
        )[0]
        if refunded >= paid:  # all of it: a group-buy payer leaves a forming team
            on_refund_opened(order, refund, timeutil.now())
            on_preorder_refund_opened(order, refund)  # a pre-order is withdrawn or settled
        record_audit(
            actor,
            "orders.refund_requested",
            target=refund,
            scope_path=order.store.path,
            details={
                "order": order.number,
                "amount_fen": amount_fen,
                "reason": reason,
                **({"member": member.pk} if member else {}),
            },
        )
        # Outbox: the gateway is called only after this commits; a failure there is retried by
        # the refund sweep, never lost, and never rolls this record back.
        transaction.on_commit(lambda: _enqueue_refund(refund.pk), robust=True)
    return refund


def _enqueue_refund(refund_id: int) -> None:
    from ..tasks import submit_refund_task

    submit_refund_task.delay(refund_id)


REFUND_RESUBMIT_AFTER = timedelta(minutes=1)
MAX_REFUND_ATTEMPTS = 20


def submit_refund(refund_id: int) -> str:
    """Send one refund to the gateway. Safe to run twice or concurrently: the gateway treats the
    same out_refund_no as the same refund. Returns ``submitted``, ``skipped`` or ``failed``."""
    from shequn.integrations.wechatpay.client import GatewayError
    from shequn.integrations.wechatpay.config import notify_url, wechatpay_client

    refund = Refund.objects.select_related("order", "payment").filter(pk=refund_id).first()
    if refund is None or refund.status != RefundStatus.PENDING or refund.submitted_at is not None:
        return "skipped"
    client = wechatpay_client()
    if client is None:
        return "skipped"  # payments not configured: stays pending, visible, swept later
    Refund.objects.filter(pk=refund.pk).update(submit_attempts=F("submit_attempts") + 1)
    try:
        client.create_refund(
            out_trade_no=refund.order.number,
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            total_fen=refund.payment.amount_fen,
            reason=refund.reason,
            notify_url=notify_url(),
        )
    except GatewayError as exc:
        error = f"{exc.code}: {exc.message}"
    except Exception as exc:  # a broken response is a failed attempt too, never a crashed sweep
        logger.exception("refund %s submission failed", refund.out_refund_no)
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = ""
    if error:
        if refund.submit_attempts + 1 >= MAX_REFUND_ATTEMPTS:  # give up: a person must look
            Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
                status=RefundStatus.ABNORMAL, last_error=f"放弃自动重试: {error}"[:200]
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(last_error=error[:200])
        return "failed"
    Refund.objects.filter(pk=refund.pk, submitted_at__isnull=True).update(
        submitted_at=timeutil.now(), last_error=""
    )
    return "submitted"


def sweep_unsubmitted_refunds(*, batch: int = 100, pause_s: float = 0.0) -> int:
    """Resubmit refunds whose gateway call never succeeded (the outbox's safety net)."""
    cutoff = timeutil.now() - REFUND_RESUBMIT_AFTER
    due = Refund.objects.filter(
        status=RefundStatus.PENDING, submitted_at__isnull=True, created_at__lte=cutoff
    ).values_list("pk", flat=True)[:batch]
    submitted = 0
    for refund_id in list(due):
        submitted += submit_refund(refund_id) == "submitted"
        if pause_s:
            time.sleep(pause_s)
    return submitted


@dataclass(frozen=True)
class RefundReport:
    """A refund result from the platform (REFUND.SUCCESS / ABNORMAL / CLOSED), already verified."""

    notification_id: str
    event_type: str
    out_refund_no: str
    refund_fen: int
    mchid: str


REFUND_EVENTS = {
    "REFUND.SUCCESS": RefundStatus.SUCCEEDED,
    "REFUND.ABNORMAL": RefundStatus.ABNORMAL,
    "REFUND.CLOSED": RefundStatus.CLOSED,
}


def record_refund_result(
    report: RefundReport, *, expected_mchid: str, provider: str = "wechatpay"
) -> str:
    """Apply a refund notification exactly once; returns the refund's new status or ``duplicate``.

    SUCCESS is final: when the order's refunds reach the paid amount it becomes refunded, and an
    order not yet picked up gives its units back to the shelf. CLOSED (the refund failed) gives
    the amount back to what may be refunded. ABNORMAL is not final: the refund waits for a person.
    """
    target = REFUND_EVENTS.get(report.event_type)
    if target is None:
        raise InvalidInput(f"未知的退款事件: {report.event_type}", code="unknown_event")
    if report.mchid != expected_mchid:
        raise PaymentMismatch("商户号与本商户不符")
    with transaction.atomic():
        if not _claim_notification(provider, report.notification_id, report.event_type):
            return "duplicate"
        refund = (
            Refund.objects.select_related("order__store", "payment")
            .filter(out_refund_no=report.out_refund_no)
            .first()
        )
        if refund is None:
            raise PaymentMismatch(f"退款单不存在: {report.out_refund_no}")
        # Lock order first, then refund (the order every writer of an order uses), and only
        # those rows: a pickup running at the same time waits, and reads no stale status.
        Order.objects.select_for_update(of=("self",)).filter(pk=refund.order_id).first()
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("order__store", "payment")
            .get(pk=refund.pk)
        )
        if report.refund_fen != refund.amount_fen:
            raise PaymentMismatch(
                f"退款金额 {report.refund_fen} 分与退款单 {refund.amount_fen} 分不符"
            )
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.CLOSED):
            if refund.status != target:
                raise PaymentMismatch(
                    f"退款单已{refund.get_status_display()}, 不能再变为{target.label}"
                )
            outcome = "duplicate"
        elif refund.status == target:  # ABNORMAL again
            outcome = "duplicate"
        else:
            outcome = target.value
            now = timeutil.now()
            Refund.objects.filter(pk=refund.pk).update(
                status=target, finished_at=now if target != RefundStatus.ABNORMAL else None
            )
            if target == RefundStatus.CLOSED:
                Payment.objects.filter(
                    pk=refund.payment_id, refunded_fen__gte=refund.amount_fen
                ).update(refunded_fen=F("refunded_fen") - refund.amount_fen)
            elif target == RefundStatus.SUCCEEDED:
                _close_if_fully_refunded(refund.order, refund.payment)
                net_paid = _net_paid(refund.order)
                reverse_order_commissions(
                    refund.order, net_paid_fen=net_paid, event_key=refund.out_refund_no
                )
                reverse_group_owner_reward(
                    refund.order, net_paid_fen=net_paid, event_key=refund.out_refund_no
                )
            record_audit(
                None,
                f"orders.refund_{target.value}",
                target=refund,
                scope_path=refund.order.store.path,
                details={"order": refund.order.number, "amount_fen": refund.amount_fen},
            )
        _finish_notification(
            provider, report.notification_id, outcome=outcome, out_trade_no=refund.order.number
        )
    return outcome


def _net_paid(order: Order) -> int:
    """What the order's payment brought in, less what was refunded of it (a duplicate payment,
    marked refund_required, was never the order's)."""
    payments = order.payments.filter(refund_required=False)
    paid = payments.aggregate(total=Sum("amount_fen"))["total"] or 0
    refunded = (
        Refund.objects.filter(payment__in=payments, status=RefundStatus.SUCCEEDED).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    return int(paid - refunded)


def _close_if_fully_refunded(order: Order, payment: Payment) -> None:
    refunded = (
        Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    if refunded < payment.amount_fen or payment.refund_required:
        return  # partial, or money for an order that was never re-opened: status stays
    if order.status == OrderStatus.PAID and transition(
        order.pk, OrderStatus.PAID, OrderStatus.REFUNDED
    ):  # not picked up: the units go back on sale, and to the promotion if from one
        _release_promotions(order, _apply_to_lines(order, release_stock), unpaid=False)
    elif order.status == OrderStatus.FULFILLED:
        transition(order.pk, OrderStatus.FULFILLED, OrderStatus.REFUNDED)
