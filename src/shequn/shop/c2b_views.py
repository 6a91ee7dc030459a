"""Member pages for reverse customization (反向定制): a proposal the member's group asked for,
with its progress towards the minimum and a countdown, and the deposit pre-order. They parse,
authorize and render; who may pre-order, limits and counts are decided in the actions."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from shequn.core import timeutil
from shequn.demand.models import ProposalStatus
from shequn.demand.proposals import member_groups_for, place_preorder
from shequn.demand.queries import proposal_for_member

from . import cart
from .session import current_member, logged_in_member, member_view
from .views import shop_page


@shop_page
def proposal(request: HttpRequest, proposal_id: int) -> HttpResponse:
    member = current_member(request)
    found = proposal_for_member(member, proposal_id)
    open_now = found.status == ProposalStatus.OPEN and found.deadline > timeutil.now()
    groups = member_groups_for(member, found) if member is not None else []
    return render(
        request,
        "shop/proposal.html",
        {
            "proposal": found,
            "member": member,
            "open_now": open_now,
            "eligible": member is None or bool(groups),
            "pickup_store": groups[0].store if groups else None,
            "percent": min(100, round(100 * found.committed_units / found.min_units)),
            "missing": max(0, found.min_units - found.committed_units),
            "idempotency_key": uuid.uuid4().hex,
        },
    )


@require_POST
@shop_page
@member_view
def preorder(request: HttpRequest, proposal_id: int) -> HttpResponse:
    member = logged_in_member(request)
    found = proposal_for_member(member, proposal_id)
    placed = place_preorder(
        member=member,
        proposal=found,
        quantity=cart.parse_quantity(request.POST.get("quantity", "1")),
        idempotency_key=request.POST.get("idempotency_key", ""),
    )
    return redirect("shop:order", number=placed.order.number)
