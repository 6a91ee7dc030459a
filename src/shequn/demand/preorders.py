"""The C2B pre-order rules that payments, refunds, closes and pickups call (as
``promotions/groupbuy.py`` does for group-buys).

A pre-order is an ordinary order with one line of the proposal's SKU, whose online amount is
the deposit; it counts towards the proposal's threshold only once paid. Every function here runs
inside the caller's transaction with the order row locked, and takes the proposal row before
the pre-order row — the lock order the decision sweep uses too (proposal, then pre-orders).
This module never calls a gateway and never imports ``orders.actions`` (which imports it).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from shequn.orders.models import Order, Refund

from .models import PreOrder, PreOrderBuyer, PreOrderStatus, Proposal, ProposalStatus


def _preorder(order: Order) -> PreOrder | None:
    return PreOrder.objects.filter(order_id=order.pk).first()


def commit_preorder(order: Order, paid_at: datetime) -> str | None:
    """Inside ``record_payment`` (order row locked): count the paid units towards the proposal.
    Returns None (not a pre-order), ``committed``, or ``refund_due`` — the deposit arrived after
    the deadline or after the decision, so it is owed back (the refund sweep opens it)."""
    preorder = _preorder(order)
    if preorder is None or preorder.status != PreOrderStatus.PENDING:
        return None
    counted = Proposal.objects.filter(
        pk=preorder.proposal_id, status=ProposalStatus.OPEN, deadline__gt=paid_at
    ).update(committed_units=F("committed_units") + preorder.quantity)
    status = PreOrderStatus.COMMITTED if counted else PreOrderStatus.REFUND_DUE
    PreOrder.objects.filter(pk=preorder.pk, status=PreOrderStatus.PENDING).update(status=status)
    return str(status)


def release_preorder(order: Order, *, unpaid: bool) -> None:
    """An order leaves the pre-order: closed unpaid, or refunded in full. Its units go back to
    the member's limit; an unpaid one is simply closed."""
    preorder = _preorder(order)
    if preorder is None:
        return
    if unpaid:
        PreOrder.objects.filter(pk=preorder.pk, status=PreOrderStatus.PENDING).update(
            status=PreOrderStatus.CLOSED
        )
    released = PreOrderBuyer.objects.filter(
        proposal_id=preorder.proposal_id, member_id=preorder.member_id, units__gte=preorder.quantity
    ).update(units=F("units") - preorder.quantity)
    if released != 1:
        raise RuntimeError(f"pre-order counter missing for order {order.number}")


def on_preorder_refund_opened(order: Order, refund: Refund) -> None:
    """Inside the transaction of a refund of everything paid. A member who takes a committed
    pre-order back before the decision withdraws: the units leave the count. A pre-order owed its
    deposit back is marked refunded, so the sweep never opens a second refund."""
    preorder = _preorder(order)
    if preorder is None:
        return
    if preorder.status == PreOrderStatus.COMMITTED:
        Proposal.objects.filter(
            pk=preorder.proposal_id,
            status=ProposalStatus.OPEN,
            committed_units__gte=preorder.quantity,
        ).update(committed_units=F("committed_units") - preorder.quantity)
        PreOrder.objects.filter(pk=preorder.pk, status=PreOrderStatus.COMMITTED).update(
            status=PreOrderStatus.WITHDRAWN, refund=refund
        )
    elif preorder.status in (PreOrderStatus.REFUND_DUE, PreOrderStatus.CONVERTED):
        PreOrder.objects.filter(pk=preorder.pk, status=preorder.status).update(
            status=PreOrderStatus.REFUNDED, refund=refund
        )


def member_refund_blocker(order: Order) -> str | None:
    """Why the member may not take this order back online: once a proposal has succeeded the
    product is being made for them; the store decides (as after a pickup)."""
    preorder = _preorder(order)
    if preorder is not None and preorder.status == PreOrderStatus.CONVERTED:
        return "预订已达成, 商品正在为你生产, 不能在线退定金; 如有问题请联系门店"
    return None


def holds_stock(order: Order) -> bool:
    """Whether units are set aside on the shelf for this order. Every ordinary order holds them
    from placement; a pre-order only once its store received the production delivery."""
    allocated = PreOrder.objects.filter(order_id=order.pk).values_list("allocated", flat=True)
    return next(iter(allocated), True)


def pickup_blocker(order: Order) -> str | None:
    """Why a paid pre-order may not be handed over yet."""
    preorder = PreOrder.objects.select_related("proposal").filter(order_id=order.pk).first()
    if preorder is None:
        return None
    if preorder.status != PreOrderStatus.CONVERTED:
        if preorder.proposal.status == ProposalStatus.OPEN:
            return "预订尚未截止, 达到起订量后才会生产, 不能提货"
        return "该预订未达成, 定金将自动退回, 不能提货"
    if not preorder.allocated:
        return "商品正在生产, 尚未到店, 到店后会通知你提货"
    return None
