"""Reads of the demand river, scoped to the caller: a store's staff see their own groups'
messages and cases, a region its stores', HQ all of them."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum

from shequn.catalog.models import Product
from shequn.core import timeutil
from shequn.core.errors import NotFound
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.orders.models import Order
from shequn.org.models import Staff
from shequn.org.roles import Perm, Role, has_perm
from shequn.org.scoping import get_scoped, scoped

from .models import (
    CaseStatus,
    Complaint,
    Message,
    ModerationCase,
    PreOrder,
    PreOrderStatus,
    ProductionLine,
    Proposal,
    ProposalStatus,
    Topic,
)


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


# --- reverse customization ------------------------------------------------------------------
def visible_proposals(staff: Staff) -> QuerySet[Proposal]:
    """HQ sees the chain's proposals; a supplier those made in its name."""
    if not has_perm(staff.role, Perm.VIEW_DEMAND):
        return Proposal.objects.none()
    proposals = Proposal.objects.filter(chain_id=staff.node.chain_id).select_related(
        "supplier", "topic", "production_order"
    )
    if staff.role == Role.SUPPLIER:
        proposals = proposals.filter(supplier__accounts=staff.user)
    return proposals.order_by("-created_at", "-id")


def access_proposal(staff: Staff, proposal_id: object) -> Proposal:
    return get_scoped(visible_proposals(staff), staff, proposal_id)


def deliveries_to_receive(staff: Staff) -> QuerySet[ProductionLine]:
    """Production deliveries for the stores in scope (what a store takes in)."""
    return scoped(
        ProductionLine.objects.select_related("production_order__proposal", "store"),
        staff,
        Perm.MANAGE_STOCK,
    ).order_by("received_at", "-id")


def access_delivery(staff: Staff, line_id: object) -> ProductionLine:
    return get_scoped(deliveries_to_receive(staff), staff, line_id)


def preorders_by_store(proposal: Proposal) -> list[dict[str, object]]:
    """Per store: paid members and units (what HQ and the supplier watch fill up)."""
    rows = (
        PreOrder.objects.filter(
            proposal=proposal,
            status__in=(PreOrderStatus.COMMITTED, PreOrderStatus.CONVERTED),
        )
        .values("store__name")
        .annotate(members=Count("member", distinct=True), units=Sum("quantity"))
        .order_by("-units", "store__name")
    )
    return [dict(row) for row in rows]


def open_proposals_for_group(group: CustomerGroup) -> QuerySet[Proposal]:
    """What a group's members may pre-order now (the group page lists them)."""
    return Proposal.objects.filter(
        groups=group, status=ProposalStatus.OPEN, deadline__gt=timeutil.now()
    ).order_by("deadline")


def proposal_for_member(member: Member | None, proposal_id: object) -> Proposal:
    """A published proposal (of the member's chain, once logged in); the page is as public as
    a product page, pre-ordering is for the members of its groups."""
    proposals = Proposal.objects.exclude(status=ProposalStatus.DRAFT)
    if member is not None:
        proposals = proposals.filter(chain_id=member.chain_id)
    found = proposals.filter(pk=proposal_id).first() if isinstance(proposal_id, int) else None
    if found is None:
        raise NotFound("预订不存在")
    return found


def order_preorder(order: Order) -> PreOrder | None:
    """The pre-order an order carries, with its proposal (None for ordinary orders)."""
    return PreOrder.objects.select_related("proposal").filter(order_id=order.pk).first()
