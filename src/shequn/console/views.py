"""Console pages. Like the API they only parse, authorize (through the scoped queries) and render."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from shequn.catalog.queries import access_product, visible_products, visible_stock
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput
from shequn.core.middleware import client_ip
from shequn.core.money import format_fen, yuan_to_fen
from shequn.core.timeutil import local_day_bounds, local_today
from shequn.groups import actions as group_actions
from shequn.groups.models import GroupStatus, GroupTheme, InvitationKind
from shequn.groups.qr import qr_png
from shequn.groups.queries import (
    access_group,
    access_invitation,
    stores_with_groups,
    visible_groups,
    visible_invitations,
    visible_memberships,
    visible_rewards,
)
from shequn.integrations import sms
from shequn.members.actions import prove_phone, send_login_code, ticked_consents
from shequn.members.phones import normalize_phone
from shequn.members.queries import can_see_pii, phone_for, visible_members
from shequn.orders.actions import request_refund, verify_pickup
from shequn.orders.exports import export_orders
from shequn.orders.models import Fulfilment, Order, OrderChannel, OrderStatus, RefundStatus
from shequn.orders.queries import access_order, visible_orders, visible_refunds
from shequn.org.models import NodeKind, Staff
from shequn.org.queries import visible_nodes, visible_staff, visible_stores
from shequn.org.roles import Perm, has_perm
from shequn.org.scoping import access_node, acting_staff, require_perm, scoped, within_node
from shequn.promotions.calendar import week_calendar
from shequn.promotions.queries import visible_schedules
from shequn.referrals.actions import decide_sharer, review_commission
from shequn.referrals.exports import export_statement
from shequn.referrals.models import BindingMode, CommissionStatus, SharerStatus
from shequn.referrals.policy import set_referral_settings
from shequn.referrals.queries import (
    access_sharer,
    leaderboard,
    month_bounds,
    month_commissions,
    referral_settings,
    visible_commissions,
    visible_sharers,
)
from shequn.shop import session as shop_session
from shequn.shop.actions import push_product_card
from shequn.shop.links import Source, product_link
from shequn.shop.models import GroupPost

View = Callable[..., HttpResponse]


def parse_yuan(raw: str) -> int:
    """An amount typed in yuan ("12.5") as fen, or the reason it is not one."""
    try:
        return yuan_to_fen(raw or "")
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_amount") from None


def staff_view(view: View) -> View:
    """Login required, and the user must be staff; ``request.staff`` is the acting staff member."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('console:login')}?next={request.path}")
        try:
            request.staff = acting_staff(request.user)  # type: ignore[attr-defined]
        except DomainError as exc:
            return render(request, "console/error.html", {"message": exc.message}, status=403)
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            if request.method == "POST":
                messages.error(request, exc.message)
                return HttpResponseRedirect(
                    request.META.get("HTTP_REFERER") or reverse("console:home")
                )
            return render(
                request, "console/error.html", {"message": exc.message}, status=exc.status
            )

    return wrapper


def _staff(request: HttpRequest) -> Staff:
    return request.staff  # type: ignore[attr-defined,no-any-return]


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
def groups(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    qs = visible_groups(staff)
    store_id = request.GET.get("store")
    theme = request.GET.get("theme")
    if store_id:
        qs = within_node(qs, staff, store_id)
    if theme:
        qs = qs.filter(theme=theme)
    return render(
        request,
        "console/groups.html",
        {
            "groups": qs[:500],
            "stores": visible_stores(staff),
            "themes": GroupTheme.choices,
            "selected_store": store_id or "",
            "selected_theme": theme or "",
        },
    )


@staff_view
def group_new(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    if request.method == "POST":
        store = access_node(staff, request.POST.get("store", ""))
        group = group_actions.create_group(
            acting=staff,
            store=store,
            name=request.POST.get("name", ""),
            theme=request.POST.get("theme", ""),
            capacity=int(request.POST.get("capacity") or 500),
            rules=request.POST.get("rules", ""),
        )
        messages.success(request, f"已创建社群「{group.name}」")
        return redirect("console:group", group_id=group.pk)
    return render(
        request,
        "console/group_new.html",
        {"stores": visible_stores(staff), "themes": GroupTheme.choices},
    )


@staff_view
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    staff = _staff(request)
    group = access_group(staff, group_id)
    memberships = visible_memberships(staff).filter(group=group, left_at__isnull=True)[:500]
    rows = [{"m": m, "phone": phone_for(staff, m.member)} for m in memberships]
    return render(
        request,
        "console/group_detail.html",
        {
            "group": group,
            "rows": rows,
            "invitations": visible_invitations(staff).filter(group=group)[:20],
            "pii": can_see_pii(staff),
        },
    )


@staff_view
def members(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    qs = visible_members(staff)
    query = request.GET.get("q", "").strip()
    if query:
        try:
            qs = qs.filter(phone=normalize_phone(query))
        except DomainError:
            qs = qs.filter(name__contains=query)
    total = qs.count()
    rows = [{"m": m, "phone": phone_for(staff, m)} for m in qs[:200]]
    return render(
        request,
        "console/members.html",
        {"rows": rows, "total": total, "q": query, "pii": can_see_pii(staff)},
    )


@staff_view
def invitations(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        group_id = request.POST.get("group")
        store_id = request.POST.get("store")
        invitation = group_actions.create_invitation(
            acting=staff,
            kind=kind,
            group=access_group(staff, group_id) if group_id else None,
            store=access_node(staff, store_id) if store_id else None,
            theme=request.POST.get("theme", ""),
            days=int(request.POST.get("days") or 30),
        )
        messages.success(request, "已生成邀请码")
        return redirect("console:invitation", invitation_id=invitation.pk)
    return render(
        request,
        "console/invitations.html",
        {
            "invitations": visible_invitations(staff)[:200],
            "groups": visible_groups(staff).filter(status=GroupStatus.ACTIVE),
            "stores": visible_stores(staff),
            "kinds": InvitationKind.choices,
            "themes": GroupTheme.choices,
        },
    )


def _join_url(request: HttpRequest, code: str) -> str:
    return request.build_absolute_uri(reverse("console:join", args=[code]))


@staff_view
def invitation_detail(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = access_invitation(_staff(request), invitation_id)
    code = group_actions.invitation_code(invitation)
    return render(
        request,
        "console/invitation_detail.html",
        {"invitation": invitation, "join_url": _join_url(request, code)},
    )


@staff_view
def invitation_qr(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = access_invitation(_staff(request), invitation_id)
    png = qr_png(_join_url(request, group_actions.invitation_code(invitation)))
    return HttpResponse(png, content_type="image/png")


@require_POST
@staff_view
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    staff = _staff(request)
    invitation = access_invitation(staff, invitation_id)
    group_actions.revoke_invitation(acting=staff, invitation=invitation)
    messages.success(request, "邀请码已作废")
    return redirect("console:invitation", invitation_id=invitation.pk)


@staff_view
def rewards(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    qs = visible_rewards(staff)
    per_staff = (
        qs.values("staff__staff__display_name", "store__name")
        .annotate(n=Count("id"), total=Sum("amount_fen"))
        .order_by("-total")
    )
    return render(
        request,
        "console/rewards.html",
        {
            "rewards": qs[:200],
            "per_staff": per_staff,
            "total": qs.aggregate(t=Sum("amount_fen"))["t"] or 0,
        },
    )


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
def stock(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    return render(
        request,
        "console/stock.html",
        {"items": visible_stock(staff).order_by("store__path", "sku__code")[:500]},
    )


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


def join(request: HttpRequest, code: str) -> HttpResponse:
    """The page behind every invitation QR code: a customer proves their phone with the code
    texted to it, then joins (and is logged in on the member pages)."""
    context: dict[str, Any] = {"code": code}
    try:
        invitation = group_actions.resolve_invitation(code)
    except DomainError as exc:
        return render(request, "console/join.html", {"error": exc.message}, status=exc.status)
    context["invitation"] = invitation
    if request.method != "POST":
        return render(request, "console/join.html", context)
    phone = request.POST.get("phone", "").strip()
    context.update(
        phone=phone,
        name=request.POST.get("name", ""),
        consent_marketing=bool(request.POST.get("consent_marketing")),
        consent_chat_analysis=bool(request.POST.get("consent_chat_analysis")),
    )
    try:
        if request.POST.get("action") == "send":
            send_login_code(store=invitation.store, phone=phone, ip=client_ip(request))
            context["sent"] = True
            if sms.shows_codes_on_page():
                context["demo_sms"] = sms.last_text_to(normalize_phone(phone))
            return render(request, "console/join.html", context)
        proof = prove_phone(
            store=invitation.store, phone=phone, code=request.POST.get("sms_code", "")
        )
        result = group_actions.join_by_invitation(
            code=code,
            proof=proof,
            name=context["name"],
            consents=ticked_consents(
                marketing=context["consent_marketing"],
                chat_analysis=context["consent_chat_analysis"],
            ),
        )
    except DomainError as exc:
        context["error"] = exc.message
        context["sent"] = request.POST.get("action") != "send"
        return render(request, "console/join.html", context, status=exc.status)
    shop_session.log_in(request, result.member)
    shop_session.enter_store(request, result.membership.group.store)
    context["joined"] = result
    return render(request, "console/join.html", context)


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


@staff_view
def referrals(request: HttpRequest) -> HttpResponse:
    """分销: applications to approve, commissions held for review, the month's commissions."""
    staff = _staff(request)
    if request.method == "POST":
        action = request.POST.get("action", "")
        target = request.POST.get("id", "")
        if action != "settings" and not target.isdigit():
            raise InvalidInput("缺少记录编号")
        if action in ("approve", "reject"):
            decide_sharer(
                acting=staff,
                sharer=access_sharer(staff, int(target)),
                approve=action == "approve",
            )
            messages.success(request, "已审核推客申请")
        elif action == "settings":
            set_referral_settings(acting=staff, **_policy_form(request))
            messages.success(request, "已保存分销设置")
        elif action in ("release", "withhold"):
            row = visible_commissions(staff).filter(pk=int(target)).first()
            if row is None:
                raise InvalidInput("佣金记录不存在")
            review_commission(acting=staff, row=row, release=action == "release")
            messages.success(request, "已处理待审核佣金")
        else:
            raise InvalidInput("未知的操作")
        return redirect("console:referrals")
    month = _month(request)
    return render(
        request,
        "console/referrals.html",
        {
            "applications": visible_sharers(staff).filter(status=SharerStatus.PENDING)[:100],
            "held": visible_commissions(staff).filter(status=CommissionStatus.HELD)[:100],
            "rows": month_commissions(staff, month)[:300],
            "leaders": leaderboard(staff, month),
            "policy": referral_settings(staff),
            "binding_modes": BindingMode.choices,
            "month": month,
            "can_review": has_perm(staff.role, Perm.MANAGE_COMMISSIONS),
            "can_approve": has_perm(staff.role, Perm.APPROVE_SHARERS),
        },
    )


def _policy_form(request: HttpRequest) -> dict[str, object]:
    """The 分销设置 form, in the units operators think in (yuan, percent), as the policy's."""
    form = request.POST
    try:
        return {
            "binding_mode": form.get("binding_mode", ""),
            "binding_days": int(form.get("binding_days", "")),
            "attribution_days": int(form.get("attribution_days", "")),
            "freeze_days": int(form.get("freeze_days", "")),
            "min_withdrawal_fen": yuan_to_fen(form.get("min_withdrawal", "")),
            "group_owner_bp": int(Decimal(form.get("group_owner_percent", "")) * 100),
        }
    except (ValueError, ArithmeticError, TypeError):
        raise InvalidInput("请填写整数天数、金额(元)和比例(%)", code="invalid_setting") from None


def _month(request: HttpRequest) -> str:
    month = request.GET.get("month", "") or f"{local_today():%Y-%m}"
    month_bounds(month)  # refuses anything but YYYY-MM
    return month


@staff_view
def referrals_export(request: HttpRequest) -> HttpResponse:
    """The month's commission statement as Excel (up to 50,000 rows)."""
    staff = _staff(request)
    month = _month(request)
    response = HttpResponse(
        export_statement(acting=staff, month=month, rows=month_commissions(staff, month)[:50_000]),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="commissions-{month}.xlsx"'
    return response
