"""The sharer's page (推客中心, H5): apply (free), then earnings — pending, withdrawable, in
flight, paid out — orders brought, one share link per product of their store, and withdrawal
requests. The money moves in ``referrals``; this page only shows it and asks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from shequn.core.errors import InvalidInput
from shequn.core.money import yuan_to_fen
from shequn.orders.models import OrderChannel
from shequn.referrals.actions import apply_as_sharer, request_withdrawal
from shequn.referrals.models import Sharer, SharerStatus
from shequn.referrals.queries import earnings, orders_brought, withdrawals

from .links import Source, product_link
from .queries import store_products
from .session import logged_in_member, member_view, shopping_store
from .views import shop_page


@shop_page
@member_view
def sharer_home(request: HttpRequest) -> HttpResponse:
    member = logged_in_member(request)
    sharer = Sharer.objects.filter(member=member).first()
    context: dict[str, object] = {"member": member, "sharer": sharer}
    if sharer is not None and sharer.status == SharerStatus.APPROVED:
        store = shopping_store(request, member) or member.home_store
        source = Source(None, member.pk, "", OrderChannel.MOMENTS_SHARE)
        context.update(
            earnings=earnings(member),
            brought=orders_brought(member),
            withdrawals=withdrawals(member),
            links=[
                (product, request.build_absolute_uri(product_link(product.pk, source)))
                for product in store_products(store)[:30]
            ],
            min_withdrawal_fen=settings.SHEQUN_MIN_WITHDRAWAL_FEN,
            request_key=uuid.uuid4().hex,
        )
    return render(request, "shop/sharer.html", context)


@require_POST
@shop_page
@member_view
def sharer_apply(request: HttpRequest) -> HttpResponse:
    apply_as_sharer(member=logged_in_member(request))
    messages.success(request, "申请已提交, 门店审核通过后即可分享赚佣金(不收任何费用)")
    return redirect("shop:sharer")


@require_POST
@shop_page
@member_view
def sharer_withdraw(request: HttpRequest) -> HttpResponse:
    try:
        amount = yuan_to_fen(request.POST.get("amount", ""))
    except (ValueError, TypeError):
        raise InvalidInput("请输入提现金额, 如 12.50", code="invalid_amount") from None
    request_withdrawal(
        member=logged_in_member(request),
        amount_fen=amount,
        request_key=request.POST.get("request_key", "")[:40],
    )
    messages.success(request, f"已申请提现 ¥{amount / 100:.2f}, 到账后显示为已提现")
    return redirect("shop:sharer")
