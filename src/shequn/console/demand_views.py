"""Console pages of the demand river: the groups' messages, labelled, and the moderation queue
(one-click warn / remove / dismiss). Reads come scoped from ``demand.queries``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from shequn.core import timeutil
from shequn.core.errors import InvalidInput
from shequn.demand.complaints import SLA, sla_by_store
from shequn.demand.models import MessageLabel
from shequn.demand.moderation import decide_case
from shequn.demand.queries import (
    access_case,
    access_topic,
    open_queue,
    visible_complaints,
    visible_messages,
    visible_topics,
)
from shequn.demand.topics import board, merge_topics, rename_topic
from shequn.groups.queries import visible_groups
from shequn.org.roles import Perm, has_perm

from .views import _staff, staff_view

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
    if group.isdigit():
        rows = rows.filter(group_id=int(group))
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
        },
    )
