"""Login, the dashboard, and the organisation's lists: stores, staff, shelf stock."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shequn.catalog.queries import visible_stock
from shequn.core.timeutil import local_day_bounds, local_today
from shequn.groups.models import GroupTheme
from shequn.groups.queries import (
    stores_with_groups,
    visible_groups,
    visible_memberships,
    visible_rewards,
)
from shequn.members.queries import visible_members
from shequn.org.models import NodeKind
from shequn.org.queries import visible_nodes, visible_staff

from ._common import _staff, staff_view


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


@staff_view
def home(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    nodes = list(visible_nodes(staff))
    groups = visible_groups(staff)
    start, end = local_day_bounds(local_today())
    rewards = visible_rewards(staff)
    stats = {
        "stores": sum(1 for n in nodes if n.kind == NodeKind.STORE),
        "groups": groups.count(),
        "members": visible_members(staff).count(),
        "joins_today": visible_memberships(staff)
        .filter(joined_at__gte=start, joined_at__lt=end)
        .count(),
        "rewards_fen": rewards.aggregate(total=Sum("amount_fen"))["total"] or 0,
    }
    by_theme = (
        groups.values("theme")
        .annotate(n=Count("id"), members=Sum("member_count"))
        .order_by("theme")
    )
    theme_labels = dict(GroupTheme.choices)
    theme_rows = [
        {
            "label": theme_labels.get(r["theme"], r["theme"]),
            "n": r["n"],
            "members": r["members"] or 0,
        }
        for r in by_theme
    ]
    max_members = max((r["members"] for r in theme_rows), default=0)
    return render(
        request,
        "console/home.html",
        {"nodes": nodes, "stats": stats, "theme_rows": theme_rows, "max_members": max_members},
    )


@staff_view
def stores(request: HttpRequest) -> HttpResponse:
    return render(request, "console/stores.html", {"stores": stores_with_groups(_staff(request))})


@staff_view
def staff_list(request: HttpRequest) -> HttpResponse:
    return render(request, "console/staff.html", {"staff_rows": visible_staff(_staff(request))})


@staff_view
def stock(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    return render(
        request,
        "console/stock.html",
        {"items": visible_stock(staff).order_by("store__path", "sku__code")[:500]},
    )
