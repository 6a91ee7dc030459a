"""Member pages (H5, phone-sized, zh-Hans). Like the console they only parse, authorize and
render: a member reaches only their own orders, and every rule lives in the actions."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

import segno
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, RuleViolation, Unavailable
from shequn.core.middleware import client_ip
from shequn.demand.models import PreOrderStatus
from shequn.demand.queries import open_proposals_for_group, order_preorder
from shequn.groups.models import CustomerGroup, GroupStatus
from shequn.members.actions import log_in_with_code
from shequn.members.models import ChannelIdentity, IdentityChannel, Member
from shequn.orders.actions import (
    LineRequest,
    cancel_unpaid_order,
    place_order,
    reconcile_payment,
    request_member_refund,
    start_payment,
)
from shequn.orders.models import Fulfilment, Order, OrderChannel, OrderStatus, RefundStatus
from shequn.promotions.models import TeamStatus

from . import cart
from .links import Source, product_link, read_source
from .queries import (
    cart_discounts,
    group_feed,
    member_order,
    member_orders,
    order_seat,
    price_cart,
    running_group_buys,
    store_offer,
)
from .session import (
    current_member,
    current_source,
    enter_store,
    log_in,
    log_out,
    logged_in_member,
    member_view,
    remember_source,
    shopping_store,
    text_login_code,
)

View = Callable[..., HttpResponse]


def shop_page(view: View) -> View:
    """A refused POST goes back where it came from with the reason; a refused GET renders it."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            if request.method == "POST":
                messages.error(request, exc.message)
                back = request.META.get("HTTP_REFERER", "")
                if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
                    back = reverse("shop:orders")
                return HttpResponseRedirect(back)
            return render(request, "shop/error.html", {"message": exc.message}, status=exc.status)

    return wrapper


# --- entering: group feed, product card -----------------------------------------------------
@shop_page
def group_home(request: HttpRequest, group_id: int) -> HttpResponse:
    group = CustomerGroup.objects.filter(pk=group_id).select_related("store").first()
    if group is None or group.status != GroupStatus.ACTIVE:
        raise NotFound("社群不存在或已解散")
    enter_store(request, group.store)
    return render(
        request,
        "shop/group.html",
        {
            "group": group,
            "cards": group_feed(group),
            "group_buys": running_group_buys(group.store, timeutil.now())[:10],
            "proposals": open_proposals_for_group(group)[:5],
            "member": current_member(request),
        },
    )


@shop_page
def product(request: HttpRequest, product_id: int) -> HttpResponse:
    member = current_member(request)
    source = read_source(product_id, request.GET.dict())
    group = None
    if source is not None and source.group_id:
        group = CustomerGroup.objects.filter(pk=source.group_id).select_related("store").first()
        if group is not None:
            enter_store(request, group.store)
    if source is not None:
        remember_source(request, source)
        if group is None and source.sharer_id and shopping_store(request, member) is None:
            # A sharer's own link (no group): a newcomer shops at the sharer's store.
            sharer = Member.objects.filter(pk=source.sharer_id).select_related("home_store")
            if (found := sharer.first()) is not None:
                enter_store(request, found.home_store)
    store = shopping_store(request, member)
    if store is None:
        raise NotFound("请从社群里的商品卡片或门店二维码进入")
    item, offers = store_offer(store, product_id)
    if request.method == "POST":
        sku_id = cart.parse_id(request.POST.get("sku"))
        if sku_id not in {offer.sku.pk for offer in offers}:
            raise InvalidInput("请选择规格", code="invalid_sku")
        quantity = cart.parse_quantity(request.POST.get("quantity", "1"))
        if quantity < 1:
            raise InvalidInput("数量须大于 0", code="invalid_quantity")
        cart.set_quantity(request, store.pk, sku_id, quantity, add=True)
        if request.POST.get("action") == "buy":
            return redirect("shop:cart")
        messages.success(request, "已加入购物车")
        return redirect(request.get_full_path())
    share = None
    if member is not None:  # the member's own link: forwarded, it credits them
        share = request.build_absolute_uri(
            product_link(
                item.pk,
                Source(group.pk if group else None, member.pk, "", OrderChannel.MOMENTS_SHARE),
            )
        )
    return render(
        request,
        "shop/product.html",
        {"product": item, "offers": offers, "store": store, "group": group, "share": share},
    )


# --- login by SMS code ----------------------------------------------------------------------
def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or reverse("shop:orders")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return reverse("shop:orders")
    return target


def login(request: HttpRequest) -> HttpResponse:
    store = shopping_store(request)
    context: dict[str, Any] = {"next": _safe_next(request), "store": store}
    if store is None:
        context["error"] = "请从社群里的商品卡片或门店二维码进入后登录"
        return render(request, "shop/login.html", context, status=400)
    phone = request.POST.get("phone", "").strip()
    context["phone"] = phone
    if request.method == "POST":
        try:
            if request.POST.get("action") == "send":
                context["demo_sms"] = text_login_code(request, store, phone)
                context["sent"] = True
            else:
                result = log_in_with_code(
                    store=store, phone=phone, code=request.POST.get("code", "")
                )
                log_in(request, result.member)
                return HttpResponseRedirect(context["next"])
        except DomainError as exc:
            context["error"] = exc.message
            return render(request, "shop/login.html", context, status=exc.status)
    return render(request, "shop/login.html", context)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    log_out(request)
    return redirect("shop:login")


# --- cart and checkout ----------------------------------------------------------------------
def _cart_view(request: HttpRequest, member: Member | None) -> dict[str, Any]:
    store = shopping_store(request, member)
    if store is None:
        raise NotFound("请从社群里的商品卡片或门店二维码进入")
    rows = price_cart(store, cart.cart_lines(request, store.pk))
    return {"store": store, "rows": rows, "total_fen": sum(row.line_fen for row in rows)}


@shop_page
def cart_page(request: HttpRequest) -> HttpResponse:
    member = current_member(request)
    if request.method == "POST":
        store = shopping_store(request, member)
        if store is None:
            raise NotFound("请从社群里的商品卡片或门店二维码进入")
        sku_id = cart.parse_id(request.POST.get("sku"))
        if sku_id not in cart.cart_lines(request, store.pk):
            raise InvalidInput("购物车里没有这件商品", code="invalid_sku")
        quantity = cart.parse_quantity(request.POST.get("quantity", "0"))
        cart.set_quantity(request, store.pk, sku_id, quantity, add=False)
        return redirect("shop:cart")
    context = _cart_view(request, member)
    options, discounts, coupon_id = cart_discounts(
        member, context["rows"], request.GET.get("coupon"), timeutil.now()
    )
    context.update(
        member=member,
        idempotency_key=uuid.uuid4().hex,
        fulfilments=Fulfilment,
        coupons=options,
        coupon_id=coupon_id,
        discounts=discounts,
        pay_fen=max(1, context["total_fen"] - discounts.total_fen),
    )
    return render(request, "shop/cart.html", context)


@require_POST
@shop_page
@member_view
def checkout(request: HttpRequest) -> HttpResponse:
    member = logged_in_member(request)
    store = shopping_store(request, member)
    if store is None:
        raise NotFound("请从社群里的商品卡片或门店二维码进入")
    lines = [LineRequest(sku, qty) for sku, qty in cart.cart_lines(request, store.pk).items()]
    key = request.POST.get("idempotency_key", "")
    coupon = request.POST.get("coupon", "").strip()
    if not lines:  # a second tap after the first one emptied the cart: show that order
        done = Order.objects.filter(member=member, idempotency_key=key).first() if key else None
        if done is not None:
            return redirect("shop:order", number=done.number)
    source = current_source(request, member.chain_id) or Source(
        None, None, "", OrderChannel.ORGANIC
    )
    group = (
        CustomerGroup.objects.filter(pk=source.group_id).select_related("store").first()
        if source.group_id
        else None
    )
    if group is not None and group.store.chain_id != member.chain_id:
        group = None
    sharer = (
        Member.objects.filter(pk=source.sharer_id, chain_id=member.chain_id).first()
        if source.sharer_id
        else None
    )
    placed = place_order(
        member=member,
        store=store,
        lines=lines,
        idempotency_key=key,
        channel=source.channel,
        source_group=group,
        sharer=sharer,
        content_ref=source.content_ref,
        fulfilment=request.POST.get("fulfilment", Fulfilment.PICKUP),
        delivery_address=request.POST.get("address", ""),
        coupon_id=cart.parse_id(coupon, "优惠券不存在", "unknown_coupon") if coupon else None,
    )
    cart.clear(request, store.pk)
    return redirect("shop:order", number=placed.order.number)


# --- orders ---------------------------------------------------------------------------------
@shop_page
@member_view
def orders(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/orders.html",
        {
            "orders": member_orders(logged_in_member(request))[:100],
            "member": logged_in_member(request),
        },
    )


def _pickup_qr_svg(code: str) -> str:
    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="svg", border=2, xmldecl=False, omitsize=True)
    return buffer.getvalue().decode()


@shop_page
@member_view
def order(request: HttpRequest, number: str) -> HttpResponse:
    member = logged_in_member(request)
    item = member_order(member, number)
    if item.status == OrderStatus.PENDING_PAYMENT and item.payment_started_at is not None:
        with contextlib.suppress(Unavailable):  # back from the cashier: ask, don't wait
            reconcile_payment(item)
        item = member_order(member, number)
    context: dict[str, Any] = {
        "order": item,
        "refunds": item.refunds.order_by("id"),
        "refund_open": item.refunds.filter(
            status__in=(RefundStatus.PENDING, RefundStatus.ABNORMAL)
        ).exists(),
        "seconds_left": max(0, int((item.payment_deadline - timeutil.now()).total_seconds())),
    }
    seat = order_seat(item)
    if seat is not None:  # a group-buy order: the code is shown once the team has formed
        context["seat"] = seat
        context["team_waiting"] = seat.team is None or seat.team.status != TeamStatus.SUCCEEDED
        if seat.team is not None:
            context["team_percent"] = round(100 * seat.team.joined / seat.team.size)
    preorder = order_preorder(item)
    if preorder is not None:  # a C2B pre-order: the code is shown once the proposal succeeded
        context["preorder"] = preorder
        context["team_waiting"] = preorder.status != PreOrderStatus.CONVERTED
        context["refund_blocked"] = not context["team_waiting"]  # being made: the store decides
    if item.pickup_code and item.status == OrderStatus.PAID and not context.get("team_waiting"):
        context["pickup_qr"] = _pickup_qr_svg(item.pickup_code)
    return render(request, "shop/order.html", context)


def _openid(request: HttpRequest, member: Member) -> str:
    """Inside WeChat a member with a known openid pays by JSAPI; anywhere else by H5."""
    if "MicroMessenger" not in request.headers.get("User-Agent", ""):
        return ""
    return (
        ChannelIdentity.objects.filter(member=member, channel=IdentityChannel.WECHAT_OPENID)
        .values_list("value", flat=True)
        .first()
        or ""
    )


def _client_ip(request: HttpRequest) -> str:
    """The payer's address, which WeChat checks for H5 pay."""
    return client_ip(request) or "127.0.0.1"


@require_POST
@shop_page
@member_view
def pay(request: HttpRequest, number: str) -> HttpResponse:
    member = logged_in_member(request)
    item = member_order(member, number)
    back = request.build_absolute_uri(reverse("shop:order", args=[item.number]))
    begun = start_payment(
        order=item,
        member=member,
        return_url=back,
        client_ip=_client_ip(request),
        openid=_openid(request, member),
    )
    if begun.kind == "jsapi":
        return render(request, "shop/pay_jsapi.html", {"order": item, "params": begun.params})
    return HttpResponseRedirect(begun.url)


@require_POST
@shop_page
@member_view
def cancel(request: HttpRequest, number: str) -> HttpResponse:
    item = member_order(logged_in_member(request), number)
    cancel_unpaid_order(order=item, member=logged_in_member(request))
    messages.success(request, "订单已取消")
    return redirect("shop:order", number=item.number)


@require_POST
@shop_page
@member_view
def refund(request: HttpRequest, number: str) -> HttpResponse:
    item = member_order(logged_in_member(request), number)
    reason = request.POST.get("reason", "").strip() or "不想要了"
    if item.status != OrderStatus.PAID:
        raise RuleViolation("只有待提货的订单可以在线退款", code="illegal_transition")
    request_member_refund(member=logged_in_member(request), order=item, reason=reason)
    messages.success(request, "退款申请已提交, 款项将原路退回")
    return redirect("shop:order", number=item.number)
