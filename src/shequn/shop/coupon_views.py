"""Member pages for coupons: the coupon centre (领券中心) and the wallet (我的券). Choosing a
coupon happens on the cart page; the rules live in ``promotions/coupons.py``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from shequn.core import timeutil
from shequn.promotions.actions import claim_coupon_for_member

from .queries import claimable_coupons, wallet
from .session import current_member, logged_in_member, member_view, shopping_store
from .views import shop_page


@shop_page
def coupons(request: HttpRequest) -> HttpResponse:
    member = current_member(request)
    store = shopping_store(request, member)
    now = timeutil.now()
    chain_id = member.chain_id if member else store.chain_id if store else None
    return render(
        request,
        "shop/coupons.html",
        {
            "member": member,
            "templates": list(claimable_coupons(chain_id, now)[:50]) if chain_id else [],
            "wallet": wallet(member, now) if member else None,
        },
    )


@require_POST
@shop_page
@member_view
def claim(request: HttpRequest, template_id: int) -> HttpResponse:
    coupon = claim_coupon_for_member(member=logged_in_member(request), template_id=template_id)
    messages.success(
        request,
        f"已领取「{coupon.template.name}」, {timeutil.format_local(coupon.expires_at)} 前有效",
    )
    return redirect("shop:coupons")
