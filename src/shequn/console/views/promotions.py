"""Selling into the groups: product cards pushed to chosen groups, and the week's promotion
calendar."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from shequn.catalog.queries import access_product, visible_products
from shequn.core import timeutil
from shequn.core.errors import InvalidInput
from shequn.groups.models import GroupStatus
from shequn.groups.queries import visible_groups
from shequn.orders.queries import visible_orders
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm, scoped
from shequn.promotions.calendar import week_calendar
from shequn.promotions.queries import visible_schedules
from shequn.shop.actions import push_product_card
from shequn.shop.links import Source, product_link
from shequn.shop.models import GroupPost

from ._common import _staff, staff_view


@staff_view
def cards(request: HttpRequest) -> HttpResponse:
    """Push a product card into chosen groups; what was pushed lately, with its orders."""
    staff = _staff(request)
    require_perm(staff, Perm.PUSH_CARDS)
    if request.method == "POST":
        ids = [int(v) for v in request.POST.getlist("groups") if v.isdigit()]
        posts = push_product_card(
            acting=staff,
            product=access_product(staff, request.POST.get("product") or 0),
            group_ids=ids,
            headline=request.POST.get("headline", ""),
        )
        messages.success(request, f"已推送到 {len(posts)} 个社群")
        return redirect("console:cards")
    posts = list(scoped(GroupPost.objects.select_related("group__store", "product"), staff)[:100])
    order_counts = dict(
        visible_orders(staff)
        .filter(content_ref__in=[post.content_ref for post in posts])
        .values("content_ref")
        .annotate(n=Count("id"))
        .values_list("content_ref", "n")
    )
    return render(
        request,
        "console/cards.html",
        {
            "products": visible_products(staff).filter(is_active=True).order_by("name"),
            "groups": visible_groups(staff)
            .filter(status=GroupStatus.ACTIVE)
            .select_related("store")
            .order_by("store__path", "name"),
            "posts": [
                {
                    "post": post,
                    "orders": order_counts.get(post.content_ref, 0),
                    "link": product_link(
                        post.product_id,
                        Source(post.group_id, post.sharer_id, post.content_ref, "group_share"),
                    ),
                }
                for post in posts
            ],
        },
    )


@staff_view
def promotion_calendar(request: HttpRequest) -> HttpResponse:
    """The week's promotions as a grid (周一 … 周日): made and planned, with the schedules."""
    staff = _staff(request)
    raw = request.GET.get("week", "")
    try:
        any_day = date.fromisoformat(raw) if raw else timeutil.to_local(timeutil.now()).date()
    except ValueError:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", code="invalid_date") from None
    days = week_calendar(staff, any_day)
    return render(
        request,
        "console/calendar.html",
        {
            "days": days,
            "previous": (days[0].day - timedelta(days=7)).isoformat(),
            "next": (days[0].day + timedelta(days=7)).isoformat(),
            "today": timeutil.to_local(timeutil.now()).date(),
            "schedules": visible_schedules(staff).filter(stopped_at__isnull=True),
        },
    )
