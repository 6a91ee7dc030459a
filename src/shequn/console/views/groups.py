"""Customer groups (list, new, detail), members, invitations (detail, QR code, revoke) and the
staff's join rewards."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from shequn.core.errors import DomainError
from shequn.core.phones import normalize_phone
from shequn.groups import actions as group_actions
from shequn.groups.models import GroupStatus, GroupTheme, InvitationKind
from shequn.groups.qr import qr_png
from shequn.groups.queries import (
    access_group,
    access_invitation,
    visible_groups,
    visible_invitations,
    visible_memberships,
    visible_rewards,
)
from shequn.members.queries import can_see_pii, phone_for, visible_members
from shequn.org.queries import visible_stores
from shequn.org.scoping import access_node, within_node

from ._common import _staff, staff_view


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
