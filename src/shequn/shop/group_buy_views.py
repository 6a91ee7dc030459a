"""Member pages for group-buys (拼团): the campaign with its open teams and a countdown, a team's
page (the share link friends open), and starting or joining a team. Like every shop view they
only parse, authorize and render; seats, limits and prices are decided in the actions."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from shequn.core import timeutil
from shequn.core.errors import NotFound
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import OrderChannel
from shequn.promotions.models import TeamStatus

from . import cart
from .links import Source
from .queries import member_group_buy, open_teams, team_for_members, team_seats
from .session import (
    current_member,
    current_source,
    enter_store,
    logged_in_member,
    member_view,
    shopping_store,
)
from .views import shop_page


@shop_page
def group_buy(request: HttpRequest, campaign_id: int) -> HttpResponse:
    member = current_member(request)
    store = shopping_store(request, member)
    if store is None:
        raise NotFound("请从社群里的商品卡片或门店二维码进入")
    now = timeutil.now()
    campaign = member_group_buy(store, campaign_id)
    running = campaign.cancelled_at is None and campaign.starts_at <= now < campaign.ends_at
    return render(
        request,
        "shop/group_buy.html",
        {
            "campaign": campaign,
            "store": store,
            "member": member,
            "running": running,
            "not_started": now < campaign.starts_at,
            "teams": list(open_teams(campaign, store, now)[:10]) if running else [],
            "idempotency_key": uuid.uuid4().hex,
            "saved_fen": campaign.sku.price_fen - campaign.price_fen,
        },
    )


@require_POST
@shop_page
@member_view
def join_group_buy(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Start a team (no ``team``) or join one; the payment then takes the seat."""
    member = logged_in_member(request)
    store = shopping_store(request, member)
    if store is None:
        raise NotFound("请从社群里的商品卡片或门店二维码进入")
    campaign = member_group_buy(store, campaign_id)
    raw_team = request.POST.get("team", "").strip()
    source = current_source(request, member.chain_id) or Source(
        None, None, "", OrderChannel.ORGANIC
    )
    placed = place_order(
        member=member,
        store=store,
        lines=[
            LineRequest(campaign.sku_id, cart.parse_quantity(request.POST.get("quantity", "1")))
        ],
        idempotency_key=request.POST.get("idempotency_key", ""),
        channel=source.channel,
        content_ref=source.content_ref,
        group_buy_id=campaign.pk,
        team_id=cart.parse_id(raw_team, "团编号无效", "invalid_team") if raw_team else None,
    )
    return redirect("shop:order", number=placed.order.number)


@shop_page
def team(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's page: what friends open from the share link, at the team's store."""
    member = current_member(request)
    found = team_for_members(team_id)
    if member is not None and member.chain_id != found.store.chain_id:
        raise NotFound("团不存在")
    enter_store(request, found.store)
    seats = team_seats(found)
    now = timeutil.now()
    joinable = (
        found.status == TeamStatus.FORMING and found.joined < found.size and found.deadline > now
    )
    in_team = member is not None and any(seat.member_id == member.pk for seat in seats)
    return render(
        request,
        "shop/team.html",
        {
            "team": found,
            "campaign": found.campaign,
            "seats": seats,
            "empty_seats": range(max(0, found.size - len(seats))),
            "member": member,
            "joinable": joinable and not in_team,
            "in_team": in_team,
            "share": request.build_absolute_uri(reverse("shop:team", args=[found.pk])),
            "idempotency_key": uuid.uuid4().hex,
            "percent": round(100 * found.joined / found.size),
        },
    )
