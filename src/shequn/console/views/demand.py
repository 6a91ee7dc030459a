"""Console pages of the demand river: the groups' messages, labelled, and the moderation queue
(one-click warn / remove / dismiss). Reads come scoped from ``demand.queries``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from shequn.catalog.models import Supplier
from shequn.core import timeutil
from shequn.core.errors import InvalidInput
from shequn.core.validation import parse_row_id
from shequn.demand.complaints import SLA, sla_by_store
from shequn.demand.models import MessageLabel
from shequn.demand.moderation import decide_case
from shequn.demand.proposals import (
    cancel_proposal,
    draft_proposal,
    publish_proposal,
    receive_production_delivery,
    source_groups,
)
from shequn.demand.queries import (
    access_case,
    access_delivery,
    access_proposal,
    access_topic,
    deliveries_to_receive,
    open_queue,
    preorders_by_store,
    visible_complaints,
    visible_messages,
    visible_proposals,
    visible_topics,
)
from shequn.demand.topics import board, merge_topics, rename_topic, topic_card
from shequn.groups.queries import visible_groups
from shequn.org.roles import Perm, Role, has_perm
from shequn.org.scoping import require_perm

from ._common import _staff, parse_yuan, staff_view

PAGE = 200


@staff_view
def group_messages(request: HttpRequest) -> HttpResponse:
    """群消息: every message of the groups in scope with its label, newest first."""
    staff = _staff(request)
    if request.method == "POST":
        case_id = request.POST.get("case", "")
        if not case_id.isdigit():
            raise InvalidInput("缺少违规记录编号")
        decided = decide_case(
            acting=staff,
            case=access_case(staff, int(case_id)),
            action=request.POST.get("action", ""),
        )
        messages.success(request, f"已处理: {decided.get_status_display()}")
        return redirect("console:messages")
    label = request.GET.get("label", "")
    if label and label not in MessageLabel.values:
        raise InvalidInput(f"未知的分类: {label}")
    group = request.GET.get("group", "")
    rows = visible_messages(staff)
    if label:
        rows = rows.filter(label=label)
    group_id = parse_row_id(group)
    if group_id is not None:
        rows = rows.filter(group_id=group_id)
    return render(
        request,
        "console/messages.html",
        {
            "rows": rows[:PAGE],
            "queue": open_queue(staff)[:100],
            "labels": MessageLabel.choices,
            "label": label,
            "groups": visible_groups(staff),
            "group": group,
            "can_moderate": has_perm(staff.role, Perm.MANAGE_GROUPS),
        },
    )


@staff_view
def complaints(request: HttpRequest) -> HttpResponse:
    """投诉: the live feed across the stores in scope (refreshes itself), unanswered first, and
    each store's response times over the last 7 days against the 30-minute target."""
    staff = _staff(request)
    scoped_complaints = visible_complaints(staff)
    now = timeutil.now()
    waiting = scoped_complaints.filter(first_response_at__isnull=True)
    return render(
        request,
        "console/complaints.html",
        {
            "waiting": waiting[:100],
            "recent": scoped_complaints.filter(first_response_at__isnull=False)[:50],
            "sla": sla_by_store(scoped_complaints.filter(sent_at__gte=now - timedelta(days=7))),
            "sla_minutes": int(SLA.total_seconds() // 60),
            "now": now,
        },
    )


@staff_view
def demand_board(request: HttpRequest) -> HttpResponse:
    """需求看板: what members ask for and complain about, by distinct members; HQ renames and
    merges topics here, suppliers see the topics of their own categories."""
    staff = _staff(request)
    topics = visible_topics(staff)
    if request.method == "POST":
        topic_id = request.POST.get("topic", "")
        if not topic_id.isdigit():
            raise InvalidInput("缺少主题编号")
        topic = access_topic(staff, int(topic_id))
        into = request.POST.get("merge_into", "")
        if into:
            if not into.isdigit():
                raise InvalidInput("请选择要合并到的主题")
            merge_topics(acting=staff, source=topic, target=access_topic(staff, int(into)))
            messages.success(request, "已合并主题")
        else:
            rename_topic(acting=staff, topic=topic, title=request.POST.get("title", ""))
            messages.success(request, "已重命名主题")
        return redirect("console:demand")
    cards = board(topics, limit=40)
    peak = max((count for card in cards for _, count in card.weekly), default=0) or 1
    return render(
        request,
        "console/demand.html",
        {
            "cards": cards,
            "peak": peak,
            "can_manage": has_perm(staff.role, Perm.MANAGE_DEMAND),
            "can_propose": has_perm(staff.role, Perm.DRAFT_PROPOSALS),
        },
    )


# --- reverse customization (反向定制) ---------------------------------------------------------
def _local_deadline(raw: str) -> datetime:
    """A ``datetime-local`` input (the operator's wall clock, Asia/Shanghai) as an aware time."""
    try:
        naive = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        raise InvalidInput("请填写预订截止时间", code="invalid_deadline") from None
    if naive.tzinfo is not None:
        raise InvalidInput("预订截止时间无效", code="invalid_deadline")
    return naive.replace(tzinfo=timeutil.local_tz())


def _whole(raw: str, label: str) -> int:
    raw = (raw or "").strip()
    if not raw.isdigit():
        raise InvalidInput(f"{label}须为整数", code="invalid_count")
    return int(raw)


@staff_view
def propose(request: HttpRequest, topic_id: int) -> HttpResponse:
    """A supplier (or HQ) drafts a reverse-customization proposal answering a topic."""
    staff = _staff(request)
    topic = access_topic(staff, topic_id)  # first: a topic out of sight is a 404 for anyone
    require_perm(staff, Perm.DRAFT_PROPOSALS)
    suppliers = (
        Supplier.objects.filter(chain_id=staff.node.chain_id, accounts=staff.user)
        if staff.role == Role.SUPPLIER
        else Supplier.objects.filter(chain_id=staff.node.chain_id)
    ).order_by("name")
    if request.method == "POST":
        form = request.POST
        supplier_id = form.get("supplier", "")
        proposal = draft_proposal(
            acting=staff,
            topic=topic,
            title=form.get("title", ""),
            spec=form.get("spec", ""),
            description=form.get("description", ""),
            target_price_fen=parse_yuan(form.get("target_price", "")),
            deposit_fen=parse_yuan(form.get("deposit", "")),
            min_units=_whole(form.get("min_units", ""), "起订量"),
            per_member_limit=_whole(form.get("per_member_limit", "10"), "每人限订"),
            deadline=_local_deadline(form.get("deadline", "")),
            supplier=suppliers.filter(pk=supplier_id).first() if supplier_id.isdigit() else None,
        )
        messages.success(request, "提案已保存为草稿, 总部发布后会推送到提出需求的社群")
        return redirect("console:proposal", proposal_id=proposal.pk)
    default_deadline = timeutil.to_local(timeutil.now() + timedelta(days=7)).replace(
        second=0, microsecond=0
    )
    return render(
        request,
        "console/propose.html",
        {
            "topic": topic,
            "card": topic_card(topic),
            "suppliers": suppliers,
            "default_deadline": default_deadline.strftime("%Y-%m-%dT%H:%M"),
        },
    )


@staff_view
def proposals(request: HttpRequest) -> HttpResponse:
    """HQ and suppliers follow their proposals; stores take in the production deliveries."""
    staff = _staff(request)
    return render(
        request,
        "console/proposals.html",
        {
            "proposals": visible_proposals(staff)[:PAGE],
            "deliveries": deliveries_to_receive(staff)[:PAGE],
            "can_receive": has_perm(staff.role, Perm.MANAGE_STOCK),
        },
    )


@staff_view
def proposal_detail(request: HttpRequest, proposal_id: int) -> HttpResponse:
    staff = _staff(request)
    proposal = access_proposal(staff, proposal_id)
    if request.method == "POST":
        if request.POST.get("action") == "publish":
            publish_proposal(acting=staff, proposal=proposal)
            messages.success(request, "已发布: 来源社群的会员现在可以付定金预订")
        elif request.POST.get("action") == "cancel":
            cancel_proposal(acting=staff, proposal=proposal, reason=request.POST.get("reason", ""))
            messages.success(request, "已取消: 已付的定金会自动退回")
        else:
            raise InvalidInput("未知操作")
        return redirect("console:proposal", proposal_id=proposal.pk)
    production = getattr(proposal, "production_order", None)
    return render(
        request,
        "console/proposal.html",
        {
            "proposal": proposal,
            "by_store": preorders_by_store(proposal),
            "groups": proposal.groups.select_related("store").order_by("id"),
            "production": production,
            "lines": production.lines.select_related("store") if production else [],
            "percent": min(100, round(100 * proposal.committed_units / proposal.min_units)),
            "can_manage": has_perm(staff.role, Perm.MANAGE_DEMAND),
            "source_groups": len(source_groups(proposal.topic)),
        },
    )


@require_POST
@staff_view
def receive_delivery(request: HttpRequest, line_id: int) -> HttpResponse:
    """到货入库: the store's share of a production order goes on the shelf, set aside for the
    pre-orders picked up there."""
    staff = _staff(request)
    line = receive_production_delivery(acting=staff, line=access_delivery(staff, line_id))
    messages.success(request, f"已入库 {line.quantity} 件, 预订的会员现在可以提货")
    return redirect("console:proposals")
