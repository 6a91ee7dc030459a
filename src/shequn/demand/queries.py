"""Reads of the demand river, scoped to the caller: a store's staff see their own groups'
messages and cases, a region its stores', HQ all of them."""

from __future__ import annotations

from django.db.models import QuerySet

from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import get_scoped, scoped

from .models import CaseStatus, Complaint, Message, ModerationCase


def visible_messages(staff: Staff) -> QuerySet[Message]:
    return scoped(
        Message.objects.select_related("group__store", "sender_member", "sender_staff__staff"),
        staff,
        Perm.VIEW_MESSAGES,
    ).order_by("-sent_at", "-id")


def visible_cases(staff: Staff) -> QuerySet[ModerationCase]:
    return scoped(
        ModerationCase.objects.select_related("message", "group__store", "member"),
        staff,
        Perm.VIEW_MESSAGES,
    ).order_by("-created_at", "-id")


def open_queue(staff: Staff) -> QuerySet[ModerationCase]:
    return visible_cases(staff).filter(status=CaseStatus.OPEN)


def access_case(staff: Staff, case_id: object) -> ModerationCase:
    return get_scoped(
        ModerationCase.objects.select_related("message", "group__store", "member"),
        staff,
        case_id,
        Perm.VIEW_MESSAGES,
    )


def visible_complaints(staff: Staff) -> QuerySet[Complaint]:
    return scoped(
        Complaint.objects.select_related("message", "group__store", "member", "responder__staff"),
        staff,
        Perm.VIEW_MESSAGES,
    ).order_by("-sent_at", "-id")
