"""Orders API for staff: lists and details within scope, cancelling unpaid orders."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.core.errors import NotFound
from shequn.core.pagination import Page
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.scoping import access_node, within_node

from . import actions
from .models import Order, OrderChannel, OrderStatus, Refund
from .queries import access_order, visible_orders

router = Router(tags=["订单"])


class LineOut(Schema):
    sku_id: int
    product_name: str
    sku_spec: str
    quantity: int
    unit_price_fen: int
    line_total_fen: int


class PickupIn(Schema):
    store_id: int
    code: str = Field(..., min_length=1, max_length=16)


class RefundIn(Schema):
    amount_fen: int = Field(..., ge=1, strict=True, description="退款金额(分)")
    payment_id: int | None = Field(None, description="订单有多笔支付时必填")
    reason: str = Field(..., min_length=1, max_length=100)


class RefundOut(Schema):
    id: int
    out_refund_no: str
    amount_fen: int
    reason: str
    status: str
    created_at: datetime


class PaymentOut(Schema):
    id: int
    transaction_id: str
    amount_fen: int
    refunded_fen: int
    refund_required: bool
    succeeded_at: datetime


class OrderOut(Schema):
    id: int
    number: str
    store_id: int
    store_name: str
    member_id: int
    member_phone: str
    status: OrderStatus
    fulfilment: str
    subtotal_fen: int
    total_fen: int
    channel: OrderChannel
    source_group_id: int | None
    sharer_id: int | None
    content_ref: str
    payment_deadline: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    close_reason: str
    fulfilled_at: datetime | None
    created_at: datetime
    lines: list[LineOut]
    payments: list[PaymentOut]

    @staticmethod
    def resolve_store_name(obj: Order) -> str:
        return obj.store.name

    @staticmethod
    def resolve_member_phone(obj: Order, context: dict[str, Any]) -> str:
        return phone_for(staff_of(context["request"]), obj.member)


@router.get("", response=list[OrderOut], summary="订单(本部门及下级)")
@paginate(Page)
def list_orders(
    request: HttpRequest,
    store_id: int | None = None,
    status: OrderStatus | None = None,
    channel: OrderChannel | None = None,
) -> object:
    staff = staff_of(request)
    qs = visible_orders(staff)
    if store_id is not None:
        qs = within_node(qs, staff, store_id)
    if status is not None:
        qs = qs.filter(status=status)
    if channel is not None:
        qs = qs.filter(channel=channel)
    return qs


@router.post("/pickup", response=OrderOut, summary="提货核销(每个提货码只能用一次)")
def verify_pickup(request: HttpRequest, payload: PickupIn) -> Order:
    staff = staff_of(request)
    order = actions.verify_pickup(
        acting=staff, store=access_node(staff, payload.store_id), code=payload.code
    )
    return access_order(staff, order.pk)


@router.get("/{order_id}", response=OrderOut, summary="订单详情")
def get_order(request: HttpRequest, order_id: int) -> Order:
    return access_order(staff_of(request), order_id)


@router.post("/{order_id}/cancel", response=OrderOut, summary="取消未支付订单")
def cancel_order(request: HttpRequest, order_id: int) -> Order:
    staff = staff_of(request)
    order = access_order(staff, order_id)
    actions.cancel_unpaid_order(order=order, acting=staff)
    return access_order(staff, order_id)


@router.post("/{order_id}/refunds", response={201: RefundOut}, summary="发起退款(部分或全额)")
def request_refund(request: HttpRequest, order_id: int, payload: RefundIn) -> Status[Refund]:
    staff = staff_of(request)
    order = access_order(staff, order_id)
    payment = None
    if payload.payment_id is not None:
        payment = order.payments.filter(pk=payload.payment_id).first()
        if payment is None:
            raise NotFound("支付记录不存在")
    refund = actions.request_refund(
        acting=staff,
        order=order,
        amount_fen=payload.amount_fen,
        reason=payload.reason,
        payment=payment,
    )
    return Status(201, refund)
