"""Reads of orders, scoped to the acting staff member (by the order's store)."""

from __future__ import annotations

from django.db.models import QuerySet

from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import get_scoped, scoped

from .models import Order, Refund


def visible_orders(staff: Staff) -> QuerySet[Order]:
    return scoped(
        Order.objects.select_related("store", "member", "source_group").prefetch_related(
            "lines", "payments"
        ),
        staff,
        Perm.VIEW_ORDERS,
    )


def access_order(staff: Staff, order_id: object) -> Order:
    return get_scoped(visible_orders(staff), staff, order_id)


def visible_refunds(staff: Staff) -> QuerySet[Refund]:
    return scoped(
        Refund.objects.select_related("order__store", "order__member", "requested_by__staff"),
        staff,
        Perm.VIEW_ORDERS,
    )
