"""Demand API for staff: the groups' messages with their labels, and the moderation queue."""

from datetime import datetime, timedelta
from typing import Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from shequn.catalog.models import Supplier
from shequn.core import timeutil
from shequn.core.errors import NotFound
from shequn.core.pagination import Page
from shequn.members.queries import phone_for
from shequn.org.api import staff_of
from shequn.org.scoping import within_node

from .complaints import sla_by_store
from .models import (
    Complaint,
    Message,
    ModerationCase,
    ProductionLine,
    Proposal,
    Topic,
)
from .moderation import decide_case
from .proposals import (
    cancel_proposal,
    draft_proposal,
    publish_proposal,
    receive_production_delivery,
)
from .queries import (
    access_case,
    access_delivery,
    access_proposal,
    access_topic,
    visible_cases,
    visible_complaints,
    visible_messages,
    visible_proposals,
    visible_topics,
)
from .topics import TopicCard, board, merge_topics, rename_topic

router = Router(tags=["需求河"])

Label = Literal["need", "complaint", "praise", "question", "ad", "chitchat"]


class MessageOut(Schema):
    id: int
    group_id: int
    store_id: int
    sent_at: datetime
    msg_type: str
    content: str
    label: str
    label_score: float | None
    sender: str  # a member's masked phone, a staff member's name, or the platform's id
    from_staff: bool


def _sender(request: HttpRequest, message: Message) -> str:
    if message.sender_member is not None:
        return phone_for(staff_of(request), message.sender_member)
    if message.sender_staff is not None:
        staff = getattr(message.sender_staff, "staff", None)
        return staff.display_name if staff else message.sender_staff.get_username()
    return message.sender_ref


def _message_out(request: HttpRequest, message: Message) -> dict[str, object]:
    return {
        "id": message.pk,
        "group_id": message.group_id,
        "store_id": message.group.store_id,
        "sent_at": message.sent_at,
        "msg_type": message.msg_type,
        "content": message.content,
        "label": message.label,
        "label_score": message.label_score,
        "sender": _sender(request, message),
        "from_staff": message.sender_staff_id is not None,
    }


@router.get("/messages", response=list[MessageOut], summary="群消息(本辖区的群, 含分类)")
@paginate(Page)
def list_messages(
    request: HttpRequest,
    label: Label | None = None,
    group_id: int | None = None,
    store_id: int | None = None,
) -> list[dict[str, object]]:
    staff = staff_of(request)
    messages = visible_messages(staff)
    if label:
        messages = messages.filter(label=label)
    if group_id is not None:
        messages = messages.filter(group_id=group_id)
    if store_id is not None:
        messages = within_node(messages, staff, store_id, via="group__store")
    return [_message_out(request, m) for m in messages[:1000]]


class CaseOut(Schema):
    id: int
    group_id: int
    member_id: int | None
    reason: str
    status: str
    content: str
    created_at: datetime
    decided_at: datetime | None

    @staticmethod
    def resolve_content(case: ModerationCase) -> str:
        return case.message.content


@router.get("/moderation", response=list[CaseOut], summary="违规处理队列(本辖区的群)")
@paginate(Page)
def list_cases(
    request: HttpRequest, status: Literal["open", "warned", "removed", "dismissed"] | None = None
) -> object:
    cases = visible_cases(staff_of(request))
    return cases.filter(status=status) if status else cases


class DecisionIn(Schema):
    action: Literal["warn", "remove", "dismiss"]


@router.post("/moderation/{case_id}/decision", response=CaseOut, summary="处理违规: 警告/移出/忽略")
def decide(request: HttpRequest, case_id: int, payload: DecisionIn) -> ModerationCase:
    staff = staff_of(request)
    return decide_case(acting=staff, case=access_case(staff, case_id), action=payload.action)


class ComplaintOut(Schema):
    id: int
    group_id: int
    store_id: int
    content: str
    sent_at: datetime
    alerted_at: datetime
    first_response_at: datetime | None
    response_seconds: int | None
    overdue: bool

    @staticmethod
    def resolve_store_id(obj: Complaint) -> int:
        return obj.group.store_id

    @staticmethod
    def resolve_content(obj: Complaint) -> str:
        return obj.message.content


@router.get("/complaints", response=list[ComplaintOut], summary="投诉(本辖区, 最新在前)")
@paginate(Page)
def list_complaints(
    request: HttpRequest, answered: bool | None = None, store_id: int | None = None
) -> object:
    staff = staff_of(request)
    complaints = visible_complaints(staff)
    if answered is not None:
        complaints = complaints.filter(first_response_at__isnull=not answered)
    if store_id is not None:
        complaints = within_node(complaints, staff, store_id, via="group__store")
    return complaints


class SlaOut(Schema):
    store: str
    complaints: int
    answered: int
    within_sla: int
    median_minutes: float | None
    slowest_minutes: float | None
    waiting_past_sla: int


@router.get("/complaints/sla", response=list[SlaOut], summary="投诉响应时效(按门店, 近 N 天)")
def complaint_sla(request: HttpRequest, days: int = Query(7, ge=1, le=90)) -> object:
    since = timeutil.now() - timedelta(days=days)
    return sla_by_store(visible_complaints(staff_of(request)).filter(sent_at__gte=since))


class TopicOut(Schema):
    id: int
    title: str
    anchor_kind: str
    product_id: int | None
    category_id: int | None
    aspect: str
    members: int
    groups: int
    stores: int
    needs: int
    complaints: int
    weekly: list[tuple[str, int]]
    aspects: list[str]
    quotes: list[str]


def _card_out(card: TopicCard) -> dict[str, object]:
    topic = card.topic
    return {
        "id": topic.pk,
        "title": topic.title,
        "anchor_kind": topic.anchor_kind,
        "product_id": topic.product_id,
        "category_id": topic.category_id,
        "aspect": topic.aspect,
        "members": card.members,
        "groups": card.groups,
        "stores": card.stores,
        "needs": card.needs,
        "complaints": card.complaints,
        "weekly": card.weekly,
        "aspects": card.aspects,
        "quotes": card.quotes,
    }


@router.get("/topics", response=list[TopicOut], summary="需求看板: 主题(按不同会员数排序)")
def list_topics(
    request: HttpRequest, limit: int = Query(30, ge=1, le=100)
) -> list[dict[str, object]]:
    return [_card_out(card) for card in board(visible_topics(staff_of(request)), limit=limit)]


class TopicPatch(Schema):
    title: str | None = None
    merge_into: int | None = None


@router.patch(
    "/topics/{topic_id}", response=TopicOut, summary="重命名主题, 或合并到另一个主题(总部)"
)
def change_topic(request: HttpRequest, topic_id: int, payload: TopicPatch) -> dict[str, object]:
    staff = staff_of(request)
    topic = access_topic(staff, topic_id)
    if payload.merge_into is not None:
        topic = merge_topics(
            acting=staff, source=topic, target=access_topic(staff, payload.merge_into)
        )
    if payload.title is not None:
        topic = rename_topic(acting=staff, topic=topic, title=payload.title)
    cards = board(Topic.objects.filter(pk=topic.pk))
    return (
        _card_out(cards[0])
        if cards
        else _card_out(TopicCard(topic, 0, 0, 0, 0, 0, timeutil.now(), [], [], []))
    )


# --- reverse customization (反向定制) -----------------------------------------------------------
class ProposalIn(Schema):
    topic_id: int
    title: str
    spec: str
    description: str = ""
    target_price_fen: int
    deposit_fen: int
    min_units: int
    per_member_limit: int = 10
    deadline: datetime
    supplier_id: int | None = None  # HQ names the supplier; a supplier account drafts as itself


class ProductionLineOut(Schema):
    id: int
    store_id: int
    quantity: int
    received_at: datetime | None


class ProposalOut(Schema):
    id: int
    topic_id: int
    supplier_id: int
    title: str
    spec: str
    description: str
    target_price_fen: int
    deposit_fen: int
    min_units: int
    per_member_limit: int
    deadline: datetime
    status: str
    committed_units: int
    group_ids: list[int]
    product_id: int | None
    production_order: str | None
    production_lines: list[ProductionLineOut]

    @staticmethod
    def resolve_group_ids(obj: Proposal) -> list[int]:
        return sorted(group.pk for group in obj.groups.all())

    @staticmethod
    def resolve_production_order(obj: Proposal) -> str | None:
        production = getattr(obj, "production_order", None)
        return production.number if production else None

    @staticmethod
    def resolve_production_lines(obj: Proposal) -> list[ProductionLine]:
        production = getattr(obj, "production_order", None)
        return list(production.lines.all()) if production else []


@router.get(
    "/proposals", response=list[ProposalOut], summary="反向定制提案(总部: 全部; 供应商: 自己的)"
)
@paginate(Page)
def list_proposals(request: HttpRequest) -> QuerySet[Proposal]:
    return visible_proposals(staff_of(request)).prefetch_related(
        "groups", "production_order__lines"
    )


@router.post("/proposals", response={201: ProposalOut}, summary="从需求主题发起反向定制提案(草稿)")
def create_proposal(request: HttpRequest, payload: ProposalIn) -> Status[Proposal]:
    staff = staff_of(request)
    topic = access_topic(staff, payload.topic_id)
    supplier = None
    if payload.supplier_id is not None:
        supplier = Supplier.objects.filter(
            pk=payload.supplier_id, chain_id=staff.node.chain_id
        ).first()
        if supplier is None:
            raise NotFound("供应商不存在")
    proposal = draft_proposal(
        acting=staff,
        topic=topic,
        title=payload.title,
        spec=payload.spec,
        description=payload.description,
        target_price_fen=payload.target_price_fen,
        deposit_fen=payload.deposit_fen,
        min_units=payload.min_units,
        per_member_limit=payload.per_member_limit,
        deadline=payload.deadline,
        supplier=supplier,
    )
    return Status(201, proposal)


@router.get("/proposals/{proposal_id}", response=ProposalOut, summary="一个提案及其生产订单")
def get_proposal(request: HttpRequest, proposal_id: int) -> Proposal:
    return access_proposal(staff_of(request), proposal_id)


@router.post(
    "/proposals/{proposal_id}/publish", response=ProposalOut, summary="发布到来源社群(总部)"
)
def publish(request: HttpRequest, proposal_id: int) -> Proposal:
    staff = staff_of(request)
    return publish_proposal(acting=staff, proposal=access_proposal(staff, proposal_id))


class CancelIn(Schema):
    reason: str


@router.post(
    "/proposals/{proposal_id}/cancel",
    response=ProposalOut,
    summary="取消提案(总部; 已付定金自动退回)",
)
def cancel(request: HttpRequest, proposal_id: int, payload: CancelIn) -> Proposal:
    staff = staff_of(request)
    proposal = access_proposal(staff, proposal_id)
    return cancel_proposal(acting=staff, proposal=proposal, reason=payload.reason)


@router.post(
    "/deliveries/{line_id}/receive", response=ProductionLineOut, summary="定制商品到店入库(门店)"
)
def receive(request: HttpRequest, line_id: int) -> ProductionLine:
    staff = staff_of(request)
    return receive_production_delivery(acting=staff, line=access_delivery(staff, line_id))
