"""Orders: the list and its Excel export, one order (where a clerk refunds), the refunds in
scope, and the pickup counter (核销台)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from shequn.core.money import format_fen
from shequn.core.timeutil import local_day_bounds, local_today
from shequn.members.queries import phone_for
from shequn.orders.actions import request_refund, verify_pickup
from shequn.orders.exports import export_orders
from shequn.orders.models import Fulfilment, Order, OrderChannel, OrderStatus, RefundStatus
from shequn.orders.queries import access_order, visible_orders, visible_refunds
from shequn.org.models import Staff
from shequn.org.queries import visible_stores
from shequn.org.roles import Perm, has_perm
from shequn.org.scoping import access_node, require_perm

from ._common import _staff, parse_yuan, staff_view


def _filtered_orders(request: HttpRequest, staff: Staff) -> tuple[QuerySet[Order], str]:
    """The orders list's filter, shared by the page and its Excel export."""
    qs = visible_orders(staff)
    status = request.GET.get("status", "")
    if status:
        qs = qs.filter(status=status)
    return qs, status


@staff_view
def orders(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    qs, status = _filtered_orders(request, staff)
    totals = qs.aggregate(n=Count("id"), total=Sum("total_fen"))
    by_channel = (
        qs.values("channel").annotate(n=Count("id"), total=Sum("total_fen")).order_by("-total")
    )
    channel_labels = dict(OrderChannel.choices)
    channel_rows = [
        {"label": channel_labels[r["channel"]], "n": r["n"], "total": r["total"] or 0}
        for r in by_channel
    ]
    return render(
        request,
        "console/orders.html",
        {
            "rows": [{"o": o, "phone": phone_for(staff, o.member)} for o in qs[:200]],
            "totals": totals,
            "channel_rows": channel_rows,
            "max_total": max((r["total"] for r in channel_rows), default=0),
            "statuses": OrderStatus.choices,
            "selected_status": status,
        },
    )


@staff_view
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    """One order: lines, payments, refunds; a clerk with the right may refund part or all."""
    staff = _staff(request)
    order = access_order(staff, order_id)
    if request.method == "POST":
        raw_payment = request.POST.get("payment", "")
        payment = (
            order.payments.filter(pk=int(raw_payment)).first()
            if raw_payment.isascii() and raw_payment.isdigit() and len(raw_payment) < 12
            else None
        )
        refund = request_refund(
            acting=staff,
            order=order,
            amount_fen=parse_yuan(request.POST.get("amount", "")),
            reason=request.POST.get("reason", ""),
            payment=payment,
        )
        messages.success(request, f"已发起退款 {format_fen(refund.amount_fen)}, 款项原路退回")
        return redirect("console:order", order_id=order.pk)
    return render(
        request,
        "console/order_detail.html",
        {
            "order": order,
            "phone": phone_for(staff, order.member),
            "refunds": order.refunds.select_related("requested_by__staff").order_by("id"),
            "payments": order.payments.order_by("id"),
            "can_refund": has_perm(staff.role, Perm.MANAGE_ORDERS),
        },
    )


@staff_view
def refunds(request: HttpRequest) -> HttpResponse:
    """Refunds in scope; ABNORMAL ones first: they wait for a person (WeChat says not final)."""
    staff = _staff(request)
    qs = visible_refunds(staff)
    status = request.GET.get("status", "")
    if status:
        qs = qs.filter(status=status)
    rows = sorted(qs[:300], key=lambda r: (r.status != RefundStatus.ABNORMAL, -r.pk))
    return render(
        request,
        "console/refunds.html",
        {"rows": rows, "statuses": RefundStatus.choices, "selected_status": status},
    )


@staff_view
def orders_export(request: HttpRequest) -> HttpResponse:
    """The order list as an Excel workbook (what the filters show, up to 20,000 orders)."""
    staff = _staff(request)
    qs, status = _filtered_orders(request, staff)
    response = HttpResponse(
        export_orders(acting=staff, orders=qs[:20_000], filters={"status": status}),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = f"orders-{local_today():%Y%m%d}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@staff_view
def pickup(request: HttpRequest) -> HttpResponse:
    """The pickup counter (核销台): verify a code; today's handovers; what still waits."""
    staff = _staff(request)
    require_perm(staff, Perm.FULFIL_ORDERS)
    stores = visible_stores(staff)
    if request.method == "POST":
        store = access_node(staff, request.POST.get("store") or "")
        order = verify_pickup(acting=staff, store=store, code=request.POST.get("code", ""))
        lines = "、".join(f"{line.product_name}×{line.quantity}" for line in order.lines.all())
        messages.success(request, f"核销成功: 订单 {order.number} · {lines}")
        return redirect("console:pickup")
    start, end = local_day_bounds(local_today())
    orders = visible_orders(staff)
    return render(
        request,
        "console/pickup.html",
        {
            "stores": stores,
            "handed_today": orders.filter(
                status=OrderStatus.FULFILLED, fulfilled_at__gte=start, fulfilled_at__lt=end
            ).select_related("fulfilled_by__staff")[:200],
            "waiting": orders.filter(status=OrderStatus.PAID, fulfilment=Fulfilment.PICKUP)[:200],
            "deliveries": orders.filter(status=OrderStatus.PAID, fulfilment=Fulfilment.DELIVERY)[
                :200
            ],
        },
    )
