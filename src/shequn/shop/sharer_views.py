"""The sharer's page (推客中心, H5): apply (free), then earnings — pending, withdrawable, in
flight, paid out — orders brought, one share link per product of their store, and withdrawal
requests. The money moves in ``referrals``; this page only shows it and asks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from shequn.catalog.models import Product
from shequn.core import timeutil
from shequn.core.errors import InvalidInput, NotFound
from shequn.core.money import yuan_to_fen
from shequn.members.models import Member
from shequn.orders.models import OrderChannel
from shequn.org.models import OrgNode
from shequn.referrals.actions import apply_as_sharer, request_withdrawal
from shequn.referrals.models import ShareCode, Sharer, SharerStatus, ShareTargetKind
from shequn.referrals.policy import chain_policy
from shequn.referrals.posters import render_poster
from shequn.referrals.queries import (
    earnings,
    monthly_statements,
    orders_brought,
    withdrawals,
)
from shequn.referrals.sharing import (
    ShareTarget,
    describe_target,
    find_share_code,
    share_codes,
    sharer_still_approved,
)

from .links import Source
from .queries import claimable_coupons, running_group_buys, store_products
from .session import enter_store, logged_in_member, member_view, remember_source, shopping_store
from .views import shop_page


@shop_page
@member_view
def sharer_home(request: HttpRequest) -> HttpResponse:
    member = logged_in_member(request)
    sharer = Sharer.objects.filter(member=member).first()
    context: dict[str, object] = {"member": member, "sharer": sharer}
    if sharer is not None and sharer.status == SharerStatus.APPROVED:
        store = shopping_store(request, member) or member.home_store
        context.update(
            earnings=earnings(member),
            brought=orders_brought(member),
            withdrawals=withdrawals(member),
            statements=monthly_statements(member),
            shares=_shares(request, member, store),
            min_withdrawal_fen=chain_policy(member.chain_id).min_withdrawal_fen,
            window_days=chain_policy(member.chain_id).attribution_days,
            request_key=uuid.uuid4().hex,
        )
    return render(request, "shop/sharer.html", context)


SHARE_LIMIT = 30  # products on the page; running coupons and group-buys are few


def _shares(request: HttpRequest, member: Member, store: OrgNode) -> list[ShareRow]:
    """Every product of the store, running coupon and group-buy, with the sharer's own link."""
    now = timeutil.now()
    targets = [
        *((ShareTargetKind.GROUP_BUY, c.pk) for c in running_group_buys(store, now)),
        *((ShareTargetKind.COUPON, t.pk) for t in claimable_coupons(store.chain_id, now)),
        *((ShareTargetKind.PRODUCT, p.pk) for p in store_products(store)[:SHARE_LIMIT]),
    ]
    return [
        ShareRow(
            share=share,
            target=target,
            link=request.build_absolute_uri(reverse("shop:share", args=[share.code])),
            poster=reverse("shop:share_poster", args=[share.code]),
        )
        for share, target in share_codes(sharer=member, store=store, targets=targets)
    ]


@dataclass(frozen=True)
class ShareRow:
    share: ShareCode
    target: ShareTarget
    link: str
    poster: str


@shop_page
def share_landing(request: HttpRequest, code: str) -> HttpResponse:
    """A share link clicked or a poster scanned: the sharer becomes the visitor's last touch
    (when still approved), the store theirs, and the target opens."""
    share = find_share_code(code)
    if share is None:
        raise Http404("分享链接无效")
    target = describe_target(share.kind, share.target_id, share.store)
    if sharer_still_approved(share):
        remember_source(
            request,
            Source(None, share.sharer_id, f"share:{share.code}", OrderChannel.MOMENTS_SHARE),
        )
    enter_store(request, share.store)
    return redirect(target.path)


def share_poster(request: HttpRequest, code: str) -> HttpResponse:
    """The poster PNG of a share code (public: it shows only what the shop page shows)."""
    share = find_share_code(code)
    if share is None:
        raise Http404("分享链接无效")
    try:
        target = describe_target(share.kind, share.target_id, share.store)
    except NotFound as gone:
        raise Http404(gone.message) from None
    image = ""
    if share.kind == ShareTargetKind.PRODUCT:
        image = Product.objects.values_list("image_url", flat=True).get(pk=share.target_id)
    png = render_poster(
        target=target,
        store_name=share.store.name,
        url=request.build_absolute_uri(reverse("shop:share", args=[share.code])),
        image_path=image,
    )
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "public, max-age=300"
    response["Content-Disposition"] = f'inline; filename="poster-{share.code}.png"'
    return response


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
