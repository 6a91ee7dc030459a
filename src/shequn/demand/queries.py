"""Reads of the demand river, scoped to the caller: a store's staff see their own groups'
messages and cases, a region its stores', HQ all of them."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from shequn.catalog.models import Product
from shequn.org.models import Staff
from shequn.org.roles import Perm, Role, has_perm
from shequn.org.scoping import get_scoped, scoped

from .models import CaseStatus, Complaint, Message, ModerationCase, Topic


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


def visible_topics(staff: Staff) -> QuerySet[Topic]:
    """The chain's topics for HQ; a supplier's only those about the products they supply or
    the categories those products are in."""
    if not has_perm(staff.role, Perm.VIEW_DEMAND):
        return Topic.objects.none()
    topics = Topic.objects.filter(chain_id=staff.node.chain_id).select_related(
        "product", "category"
    )
    if staff.role == Role.SUPPLIER:
        theirs = Product.objects.filter(supplier__accounts=staff.user)
        categories = theirs.exclude(category__isnull=True).values("category_id")
        topics = topics.filter(Q(product__in=theirs) | Q(category_id__in=categories))
    return topics


def access_topic(staff: Staff, topic_id: object) -> Topic:
    """One topic the caller may see, else NotFound (the same for missing and not theirs)."""
    return get_scoped(visible_topics(staff), staff, topic_id)
