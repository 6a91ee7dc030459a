"""Store pickup (自提核销): the pickup code drawn when an order is paid, and the handover at the
till that accepts it exactly once (the units leave the shelf, the sharer's commission starts its
freeze)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from django.db import IntegrityError, transaction

from shequn.catalog.models import MovementReason, StockMovement
from shequn.catalog.stock import hand_over_stock
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.demand.preorders import pickup_blocker as preorder_pickup_blocker
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm
from shequn.promotions.groupbuy import pickup_blocker
from shequn.referrals.actions import start_freeze

from ..models import Fulfilment, Order, OrderStatus
from ..states import transition
from ._common import _apply_to_lines
from .refunds import _refund_in_flight

PICKUP_CODE = re.compile(r"^\d{8}$")


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


PICKUP_CODE_TRIES = 5


def _mark_paid(order: Order, paid_at: datetime) -> None:
    """PENDING → PAID with a fresh pickup code; a code already used at this store (unique per
    store) is drawn again rather than failing the payment."""
    if order.fulfilment != Fulfilment.PICKUP:
        transition(order.pk, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, paid_at=paid_at)
        return
    for attempt in range(PICKUP_CODE_TRIES):
        try:
            with transaction.atomic():
                transition(
                    order.pk,
                    OrderStatus.PENDING_PAYMENT,
                    OrderStatus.PAID,
                    paid_at=paid_at,
                    pickup_code=_new_pickup_code(),
                )
            return
        except IntegrityError:
            if attempt == PICKUP_CODE_TRIES - 1:
                raise


def verify_pickup(*, acting: Staff, store: OrgNode, code: str) -> Order:
    """Hand over a paid pickup order: the code works once. A second scan — even at the same
    instant at another till — is refused with who used it and when."""
    require_perm(acting, Perm.FULFIL_ORDERS)
    if store.kind != NodeKind.STORE or not store.is_within(acting.node):
        raise NotFound("门店不存在")
    code = (code or "").strip()
    if not PICKUP_CODE.match(code):
        raise InvalidInput("提货码为 8 位数字", code="invalid_pickup_code")
    order = (
        Order.objects.filter(store=store, pickup_code=code)
        .select_related("fulfilled_by__staff")
        .first()
    )
    if order is None:
        raise NotFound("提货码不存在", code="unknown_pickup_code")
    now = timeutil.now()
    with transaction.atomic():
        # Lock order: the order row first (as refunds do), so a refund request waits for us.
        Order.objects.select_for_update(of=("self",)).filter(pk=order.pk).first()
        if _refund_in_flight(order):
            raise RuleViolation(
                "该订单有退款正在处理, 暂不能提货; 请先处理退款", code="refund_in_progress"
            )
        blocker = pickup_blocker(order)
        if blocker is not None and order.status == OrderStatus.PAID:
            raise RuleViolation(blocker, code="team_not_succeeded")
        blocker = preorder_pickup_blocker(order)
        if blocker is not None and order.status == OrderStatus.PAID:
            raise RuleViolation(blocker, code="preorder_not_ready")
        if transition(
            order.pk,
            OrderStatus.PAID,
            OrderStatus.FULFILLED,
            fulfilled_at=now,
            fulfilled_by=acting.user,
        ):
            lines = _apply_to_lines(order, hand_over_stock)
            StockMovement.objects.bulk_create(
                StockMovement(
                    store=store,
                    sku_id=line.sku_id,
                    delta=-line.quantity,
                    reason=MovementReason.SALE,
                    reference=order.number,
                    actor=acting.user,
                )
                for line in lines
            )
            record_audit(acting.user, "orders.picked_up", target=order, scope_path=store.path)
            start_freeze(order, now)  # the sharer's commission is released after the freeze
            order.refresh_from_db()
            return order
    order.refresh_from_db()
    if order.status == OrderStatus.FULFILLED and order.fulfilled_at is not None:
        who = order.fulfilled_by.staff.display_name if order.fulfilled_by else "未知"
        raise RuleViolation(
            f"该提货码已于 {timeutil.format_local(order.fulfilled_at)} 由 {who} 核销",
            code="pickup_code_used",
            details={"fulfilled_at": order.fulfilled_at.isoformat(), "fulfilled_by": who},
        )
    raise RuleViolation(f"订单{order.get_status_display()}, 不能提货", code="illegal_transition")
