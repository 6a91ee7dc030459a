"""Payments: a payment result from the platform (its notification, or our query when the
notification is late) applied exactly once; opening a payment at the gateway; and closing an
unpaid order — the member's or the store's cancel, and the sweep at the payment deadline — which
first asks the gateway whether the payer paid after all."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from shequn.catalog.stock import release_stock
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unavailable,
)
from shequn.core.faults import crash_point
from shequn.demand.preorders import commit_preorder
from shequn.integrations.wechatpay.client import (
    GatewayError,
    PrepayRequest,
    WechatPayClient,
    h5_pay_url,
)
from shequn.integrations.wechatpay.config import notify_url, wechatpay_client, wechatpay_config
from shequn.members.models import Member
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm
from shequn.promotions.groupbuy import seat_payer
from shequn.referrals.actions import accrue_order_commissions, bind_customer
from shequn.referrals.staff_rewards import accrue_group_owner_reward

from ..models import Order, OrderStatus, Payment, PaymentStatus
from ..states import transition
from ._common import (
    PaymentMismatch,
    _apply_to_lines,
    _claim_notification,
    _finish_notification,
    _release_promotions,
    logger,
)
from .pickup import _mark_paid


@dataclass(frozen=True)
class PaymentReport:
    """What a payment platform says happened, already verified by its adapter."""

    notification_id: str
    out_trade_no: str
    transaction_id: str
    amount_fen: int
    mchid: str
    appid: str
    succeeded_at: datetime
    payer_openid: str = ""

    @classmethod
    def from_wechat(cls, resource: Mapping[str, Any], *, notification_id: str) -> PaymentReport:
        """Read a WeChat Pay transaction (a notification's resource or an order query).
        KeyError, TypeError or ValueError when it is not one."""
        payer = resource.get("payer") or {}
        return cls(
            notification_id=bounded_id(notification_id, 64),
            out_trade_no=bounded_id(resource["out_trade_no"], 32),
            transaction_id=bounded_id(resource["transaction_id"], 64),
            amount_fen=int(resource["amount"]["total"]),
            mchid=str(resource["mchid"]),
            appid=str(resource["appid"]),
            succeeded_at=_success_time(str(resource.get("success_time", ""))),
            payer_openid=str(payer.get("openid", "")) if isinstance(payer, dict) else "",
        )


def bounded_id(value: object, limit: int) -> str:
    """An id from the platform as text, refused (ValueError) if it cannot be ours."""
    text = str(value)
    if not text or len(text) > limit:
        raise ValueError("id length")
    return text


def _success_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return timeutil.now()
    return moment if moment.tzinfo else timeutil.now()


def record_payment(
    report: PaymentReport, *, expected_mchid: str, expected_appid: str, provider: str = "wechatpay"
) -> str:
    """Apply a payment success exactly once. Returns the outcome: ``paid``, ``duplicate``,
    ``refund_required`` (paid after close, or paid twice).

    The notification id and the transaction id are both unique keys, and the order row is locked
    before its state is read, so duplicates — sequential or concurrent — make one transition.
    """
    if report.mchid != expected_mchid or report.appid != expected_appid:
        raise PaymentMismatch("商户号或应用 ID 与本商户不符")
    with transaction.atomic():
        if not _claim_notification(
            provider,
            report.notification_id,
            "TRANSACTION.SUCCESS",
            out_trade_no=report.out_trade_no,
            transaction_id=report.transaction_id,
        ):
            return "duplicate"
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(number=report.out_trade_no)
            .first()
        )
        if order is None:
            raise PaymentMismatch(f"订单不存在: {report.out_trade_no}")
        if report.amount_fen != order.total_fen:
            raise PaymentMismatch(
                f"支付金额 {report.amount_fen} 分与订单应付 {order.total_fen} 分不符"
            )
        if Payment.objects.filter(provider=provider, transaction_id=report.transaction_id).exists():
            outcome = "duplicate"  # a new notification id for a payment we already booked
        else:
            if order.status == OrderStatus.PENDING_PAYMENT:
                _mark_paid(order, report.succeeded_at)
                outcome = "paid"
            else:  # closed (paid too late) or paid twice: keep the money's trace, give it back
                outcome = "refund_required"
            Payment.objects.create(
                order=order,
                provider=provider,
                out_trade_no=report.out_trade_no,
                transaction_id=report.transaction_id,
                amount_fen=report.amount_fen,
                status=PaymentStatus.SUCCEEDED,
                payer_openid=report.payer_openid[:128],
                succeeded_at=report.succeeded_at,
                refund_required=outcome == "refund_required",
            )
            if outcome == "paid":  # what a payment sets going, the payment row written
                seat_payer(order, timeutil.now())  # a group-buy order takes its team seat
                commit_preorder(order, report.succeeded_at)  # a C2B deposit counts
                accrue_order_commissions(order)  # its sharer's commission, pending
                accrue_group_owner_reward(order)  # the reward of the group it came from
                bind_customer(order, timeutil.now())  # per the chain's binding mode
            record_audit(
                None,
                "orders.paid" if outcome == "paid" else "orders.paid_needs_refund",
                target=order,
                scope_path=order.store.path,
                details={"transaction_id": report.transaction_id, "amount_fen": report.amount_fen},
            )
        _finish_notification(provider, report.notification_id, outcome=outcome)
        crash_point("payments.before_commit")  # crash tests: verified, written, not committed
    return outcome


# --- paying through the gateway (prepay, query, close) ------------------------------------
# These call the gateway, so they run outside any transaction ("atomic phases"): the recovery
# point (``payment_started_at``) is committed before the call, and a retry reuses the same
# out_trade_no, which the gateway treats as the same payment.
GATEWAY_GRACE = timedelta(hours=1)  # how long past its deadline an order waits for the gateway


@dataclass(frozen=True)
class PaymentStart:
    kind: str  # "h5": send the browser to ``url``; "jsapi": hand ``params`` to WeixinJSBridge
    url: str = ""
    params: dict[str, str] | None = None


def _gateway() -> WechatPayClient:
    client = wechatpay_client()
    if client is None:
        raise Unavailable("本店尚未开通在线支付", code="payment_not_configured")
    return client


def _outside_transaction(what: str) -> None:
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{what} calls the payment gateway; call it outside a transaction")


def _description(order: Order) -> str:
    lines = list(order.lines.order_by("id").values_list("product_name", "quantity"))
    first = f"{lines[0][0]}×{lines[0][1]}" if lines else "订单"
    return f"{order.store.name} {first}" + (f" 等{len(lines)}种" if len(lines) > 1 else "")


def start_payment(
    *, order: Order, member: Member, return_url: str, client_ip: str, openid: str = ""
) -> PaymentStart:
    """Open the member's payment for an unpaid order: JSAPI inside WeChat (``openid`` known),
    H5 cashier in any other phone browser. The gateway refuses payment after our deadline
    (``time_expire``), so a payment cannot outlive the stock reservation it pays for."""
    _outside_transaction("start_payment")
    if order.member_id != member.pk:
        raise NotFound("订单不存在")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 无需支付", code="illegal_transition"
        )
    now = timeutil.now()
    if order.payment_deadline <= now + timedelta(seconds=30):
        raise RuleViolation("订单已超过支付时限, 请重新下单", code="payment_expired")
    client, config = _gateway(), wechatpay_config()
    kind = "jsapi" if openid else "h5"
    # The recovery point, committed before the call, and only while the order is still open:
    # a cancel that got in first wins, and one that comes later sees it and asks the gateway.
    Order.objects.filter(
        pk=order.pk, status=OrderStatus.PENDING_PAYMENT, payment_started_at__isnull=True
    ).update(payment_started_at=now, payment_channel=kind)
    order.refresh_from_db(fields=["status", "payment_started_at", "payment_channel"])
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 无需支付", code="illegal_transition"
        )
    if order.payment_channel != kind:  # WeChat refuses one out_trade_no under two trade types
        where = "微信内" if order.payment_channel == "jsapi" else "手机浏览器"
        raise RuleViolation(
            f"此订单已在{where}发起支付, 请在原处完成支付, 或取消后重新下单",
            code="payment_channel_changed",
        )
    prepay = PrepayRequest(
        appid=config.appid,
        out_trade_no=order.number,
        description=_description(order),
        total_fen=order.total_fen,
        notify_url=notify_url(),
        time_expire=timeutil.to_local(order.payment_deadline).isoformat(timespec="seconds"),
    )
    try:
        if openid:
            prepay_id = client.create_jsapi_prepay(prepay, payer_openid=openid)
            return PaymentStart(
                "jsapi", params=client.jsapi_pay_params(appid=config.appid, prepay_id=prepay_id)
            )
        h5_url = client.create_h5_prepay(prepay, payer_client_ip=client_ip)
    except GatewayError as exc:
        if exc.code == "ORDERPAID":
            reconcile_payment(order)
            raise RuleViolation("订单已支付", code="already_paid") from None
        if 400 <= exc.status < 500:
            raise RuleViolation(
                f"支付平台拒绝了该订单: {exc.message}", code="payment_refused"
            ) from None
        raise Unavailable(
            "支付服务暂时不可用, 请稍后再试", code="payment_gateway_unavailable"
        ) from None
    return PaymentStart("h5", url=h5_pay_url(h5_url, return_url))


def reconcile_payment(order: Order) -> str:
    """Ask the gateway what became of the order's payment, for when a notification is late or
    lost. A success is recorded exactly as its notification would be (``paid``, ``duplicate``
    or ``refund_required``); otherwise the gateway's trade_state in lower case (``notpay``,
    ``closed``, ...) or ``not_started``. It takes no lock before the call, so it may run inside
    a caller's transaction that holds none (the API's Idempotency-Key wrapper)."""
    if order.payment_started_at is None:
        return "not_started"
    try:
        data = _gateway().query_order(order.number)
    except GatewayError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return "not_started"
        raise Unavailable("支付服务暂时不可用", code="payment_gateway_unavailable") from None
    state = str(data.get("trade_state") or "unknown")
    if state != "SUCCESS":
        return state.lower()
    config = wechatpay_config()
    transaction_id = hashlib.sha256(str(data.get("transaction_id")).encode()).hexdigest()[:40]
    report = PaymentReport.from_wechat(data, notification_id=f"query:{transaction_id}")
    return record_payment(report, expected_mchid=config.mchid, expected_appid=config.appid)


def _gateway_lets_close(order: Order, now: datetime, *, wait_for_gateway: bool = False) -> bool:
    """Before closing an order whose payer may have paid at the gateway: ask (a lost
    notification is recovered here), then close it there so no payment can land afterwards.
    False when it turned out paid, or when the gateway cannot be reached — then the order
    waits, up to GATEWAY_GRACE past its deadline (a payment after that is refunded by the
    late-success path). ``wait_for_gateway`` raises instead, for a person waiting on it."""
    try:
        outcome = reconcile_payment(order)
        if outcome in ("paid", "duplicate", "refund_required"):
            return False
        if outcome not in ("not_started", "closed"):
            _gateway().close_order(order.number)
        return True
    except GatewayError as exc:
        if exc.code == "ORDERPAID":
            reconcile_payment(order)
            return False
        failure: DomainError = Unavailable("支付服务暂时不可用", code="payment_gateway_unavailable")
    except Unavailable as exc:
        failure = exc
    if wait_for_gateway:
        raise failure
    logger.warning("gateway unreachable for order %s: %s", order.number, failure.message)
    return now >= order.payment_deadline + GATEWAY_GRACE


# --- closing unpaid orders (cancel, payment deadline) ------------------------------------
def _release(
    order: Order, *, reason: str, actor: Staff | None, now: datetime, gateway_checked: bool
) -> bool:
    """Close a pending order and give its allocated units back, exactly once. Unless the
    gateway was just asked (and the payment closed there), only an order whose payment was
    never opened may close: a payment opened meanwhile makes this a no-op."""
    with transaction.atomic():
        closed = transition(
            order.pk,
            OrderStatus.PENDING_PAYMENT,
            OrderStatus.CLOSED,
            only_if=None if gateway_checked else {"payment_started_at__isnull": True},
            closed_at=now,
            close_reason=reason,
        )
        if not closed:
            return False
        _release_promotions(order, _apply_to_lines(order, release_stock), unpaid=True)
        record_audit(
            actor.user if actor else None,
            "orders.closed",
            target=order,
            scope_path=order.store.path,
            details={"reason": reason},
        )
    return True


def cancel_unpaid_order(
    *, order: Order, member: Member | None = None, acting: Staff | None = None
) -> Order:
    """The member (or store staff) cancels an order that is not paid yet."""
    if member is not None and order.member_id != member.pk:
        raise NotFound("订单不存在")
    if acting is not None:
        require_perm(acting, Perm.MANAGE_ORDERS)
    if member is None and acting is None:
        raise InvalidInput("须指明取消人")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise RuleViolation(
            f"订单{order.get_status_display()}, 不能取消", code="illegal_transition"
        )
    reason = "member_cancelled" if member is not None else "staff_cancelled"
    if not _close_unpaid(order, reason=reason, actor=acting, now=timeutil.now(), waiting=True):
        raise Conflict("订单状态已变化(可能已支付), 请刷新", code="order_changed")
    order.refresh_from_db()
    return order


def _close_unpaid(
    order: Order, *, reason: str, actor: Staff | None, now: datetime, waiting: bool = False
) -> bool:
    """Close a pending order, asking the gateway first whenever a payment may have been opened
    — also one opened by another tab while we were deciding. False when it was paid or moved
    meanwhile, or (sweeps) when the gateway must be asked again later; ``waiting`` (a person
    is waiting) raises Unavailable instead of waiting."""
    checked = False
    for _ in range(2):
        if order.payment_started_at is not None and not checked:
            if not _gateway_lets_close(order, now, wait_for_gateway=waiting):
                return False
            checked = True
        if _release(order, reason=reason, actor=actor, now=now, gateway_checked=checked):
            return True
        order.refresh_from_db()
        if order.status != OrderStatus.PENDING_PAYMENT:
            return False
    return False


def sweep_expired_orders(
    *, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0
) -> int:
    """Close every pending order whose payment deadline has passed; returns how many it closed.

    Idempotent and safe to run concurrently or after a crash: each order is released in its own
    transaction by a conditional transition, so a second sweeper finds nothing left to do.
    """
    now = now or timeutil.now()
    closed = 0
    broken: set[int] = set()
    while True:
        due = list(
            Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, payment_deadline__lte=now)
            .exclude(pk__in=broken)
            .select_related("store")
            .order_by("payment_deadline", "id")[:batch]
        )
        progressed = False
        for order in due:
            if order.pk in broken:
                continue
            try:
                if _close_unpaid(order, reason="payment_timeout", actor=None, now=now):
                    closed += 1
                    progressed = True
                else:  # paid meanwhile, or the gateway must be asked again next time
                    broken.add(order.pk)
            except Exception:  # one broken order must not block every later one
                logger.exception("could not close order %s", order.number)
                broken.add(order.pk)
            if pause_s:
                time.sleep(pause_s)  # go easy on a busy database
        if len(due) < batch or not progressed:
            return closed
