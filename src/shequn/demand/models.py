"""Group messages, as the chat platform recorded them, and what each one is.

A message is stored once: ``(platform, platform_msg_id)`` is unique, so an import or a webhook
delivered twice adds nothing. It belongs to one of the chain's groups, and is from a member
(matched by their WeCom external userid), a staff member (by WeCom userid), or someone the
chain does not know yet (``sender_ref`` keeps the platform's id). ``label`` is empty until the
classifier has seen it (the classify sweep fills it in batches, off the import's path).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.core import timeutil
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.org.models import OrgNode


class MessageType(models.TextChoices):
    TEXT = "text", "文本"
    IMAGE = "image", "图片"
    LINK = "link", "链接"
    RED_PACKET = "red_packet", "红包"
    SYSTEM = "system", "系统消息"  # joins, leaves, recalls, renames
    OTHER = "other", "其他"  # voice, video, file, mini-program …: kept, not read


class MessageLabel(models.TextChoices):
    NEED = "need", "需求/痛点"
    COMPLAINT = "complaint", "投诉"
    PRAISE = "praise", "表扬"
    QUESTION = "question", "咨询"
    AD = "ad", "广告"
    CHITCHAT = "chitchat", "闲聊"


class Message(models.Model):
    """One group message. The table takes a chain's whole chat history (the importer's target is
    50,000 rows a second), so it carries only the indexes reads use, and the database checks
    none of its references row by row. Each check is a trigger call and a parent-row lock per
    message, and the group and member checks were ~40 % of the insert's time
    (``bench/demand.py``), guarding against something the platform never does:
    - every reference is looked up in the chain's own rows by the same import (``ingest``);
    - groups, members and staff are never deleted (a group is archived, a member leaves, staff
      are deactivated), and an ORM delete is still refused by ``PROTECT``
      (``tests/demand/test_models.py``).
    ``chain`` is the group's chain copied for the classifier's catalog, not a second source of
    truth. ``group`` and ``sender_staff`` need no index of their own (``group, sent_at`` serves
    the group's reads and its ``PROTECT`` check)."""

    chain = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    group = models.ForeignKey(
        CustomerGroup,
        on_delete=models.PROTECT,
        related_name="messages",
        db_constraint=False,
        db_index=False,
    )
    platform = models.CharField(max_length=16)  # wecom, import, webhook
    platform_msg_id = models.CharField(max_length=128)
    sender_member = models.ForeignKey(
        Member,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    sender_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    sender_ref = models.CharField(max_length=64, blank=True)  # the platform's id of the sender
    sent_at = models.DateTimeField()
    msg_type = models.CharField(max_length=12, choices=MessageType.choices)
    content = models.TextField(blank=True)
    label = models.CharField(max_length=12, choices=MessageLabel.choices, blank=True)
    label_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "群消息"
        verbose_name_plural = "群消息"
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_msg_id"], name="one_row_per_platform_message"
            ),
        ]
        indexes = [
            models.Index(fields=["group", "sent_at"], name="message_group_time_idx"),
            models.Index(
                fields=["id"], name="message_unlabelled_idx", condition=models.Q(label="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.platform_msg_id}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(group__store__path__startswith=path)


class CaseStatus(models.TextChoices):
    OPEN = "open", "待处理"
    WARNED = "warned", "已警告"
    REMOVED = "removed", "已移出群"
    DISMISSED = "dismissed", "无需处理"


class ModerationCase(models.Model):
    """An ad (or abuse) seen in a group: one case per message, decided once — by the group's
    policy (warn, then remove on the second offence) or by a person from the queue."""

    message = models.OneToOneField(Message, on_delete=models.PROTECT, related_name="case")
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=12, choices=MessageLabel.choices)
    status = models.CharField(max_length=12, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # None once decided: the group's automatic policy
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "违规处理"
        verbose_name_plural = "违规处理"
        indexes = [models.Index(fields=["group", "member", "status"], name="case_offender_idx")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.get_status_display()}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(group__store__path__startswith=path)


class Complaint(models.Model):
    """A member's complaint, raised as an alert the moment it is labelled (groups are public:
    HQ must see it at once), and answered when staff first speak in that group after it."""

    message = models.OneToOneField(Message, on_delete=models.PROTECT, related_name="complaint")
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sent_at = models.DateTimeField()  # when the member said it
    alerted_at = models.DateTimeField()  # when it reached the feed
    first_response_at = models.DateTimeField(null=True, blank=True)
    responder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "投诉"
        verbose_name_plural = "投诉"
        indexes = [
            models.Index(
                fields=["group", "sent_at"],
                name="complaint_unanswered_idx",
                condition=models.Q(first_response_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"投诉 {self.message_id}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(group__store__path__startswith=path)

    @property
    def overdue(self) -> bool:
        """Unanswered past the target, or answered late (``complaints.SLA``)."""
        from .complaints import SLA

        return (self.first_response_at or timeutil.now()) - self.sent_at > SLA

    @property
    def response_seconds(self) -> int | None:
        if self.first_response_at is None:
            return None
        return max(0, int((self.first_response_at - self.sent_at).total_seconds()))


class Aspect(models.TextChoices):
    PRICE = "price", "价格"
    QUALITY = "quality", "质量"
    TASTE = "taste", "口味"
    PACKAGING = "packaging", "包装/规格"
    EFFECT = "effect", "功效"
    PICKUP = "pickup", "物流/提货"
    SERVICE = "service", "服务"
    OTHER = "other", "其他"


class AnchorKind(models.TextChoices):
    PRODUCT = "product", "商品"
    CATEGORY = "category", "类目"
    KEYWORD = "keyword", "关键词"


class Topic(models.Model):
    """A demand topic: what many members ask for or complain about — one product, category or
    keyword, on one aspect ("艾灸贴 · 包装/规格"). Messages join it as they are labelled; HQ may
    rename it, or merge it into another (its mentions move, and later ones follow)."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    title = models.CharField("主题", max_length=60)
    anchor_kind = models.CharField(max_length=10, choices=AnchorKind.choices)
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    category = models.ForeignKey(
        "catalog.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    keyword = models.CharField(max_length=30, blank=True)
    anchor_key = models.CharField(max_length=40)  # "p:12", "c:5" or "k:艾灸贴": one topic each
    aspect = models.CharField(max_length=12, choices=Aspect.choices)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "需求主题"
        verbose_name_plural = "需求主题"
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "anchor_key", "aspect"], name="one_topic_per_anchor_and_aspect"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(chain_id=int(path.strip("/").split("/")[0]))


class TopicMention(models.Model):
    """One message in one topic (a message is in at most one)."""

    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="mentions")
    message = models.OneToOneField(Message, on_delete=models.PROTECT, related_name="mention")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=12, choices=MessageLabel.choices)
    aspects = models.CharField(max_length=100, blank=True)  # every aspect named, comma-separated
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["topic", "sent_at"], name="mention_topic_time_idx")]

    def __str__(self) -> str:
        return f"{self.topic_id} ← {self.message_id}"


# --- reverse customization (反向定制, C2B) --------------------------------------------------
class ProposalStatus(models.TextChoices):
    DRAFT = "draft", "草稿"
    OPEN = "open", "预订中"
    SUCCEEDED = "succeeded", "已达成"
    FAILED = "failed", "未达成"
    CANCELLED = "cancelled", "已取消"


class Proposal(models.Model):
    """A product a supplier offers to make because a topic asked for it. Drafted from a topic
    (by the supplier or HQ), published by HQ to the groups the topic came from; members there
    pre-order with a deposit until ``deadline``. The sweep then decides once: ``min_units``
    committed → the product goes on sale, the pre-orders are orders and the supplier gets a
    production order; fewer → every deposit is refunded. ``committed_units`` counts paid
    pre-order units only, moved by guarded UPDATEs (never read-modify-write)."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="proposals")
    supplier = models.ForeignKey(
        "catalog.Supplier", on_delete=models.PROTECT, related_name="proposals"
    )
    category = models.ForeignKey(
        "catalog.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField("产品名称", max_length=60)
    spec = models.CharField("规格", max_length=100)
    description = models.TextField("说明", max_length=1000, blank=True)
    target_price_fen = models.PositiveIntegerField("目标售价(分/件)")
    deposit_fen = models.PositiveIntegerField("定金(分/件)")
    min_units = models.PositiveIntegerField("起订量(件)")
    per_member_limit = models.PositiveSmallIntegerField("每人限订(件)", default=10)
    deadline = models.DateTimeField("预订截止")
    status = models.CharField(
        max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.DRAFT
    )
    committed_units = models.PositiveIntegerField("已预订(件)", default=0)
    groups = models.ManyToManyField(CustomerGroup, related_name="proposals", blank=True)
    product = models.OneToOneField(
        "catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sku = models.OneToOneField(
        "catalog.Sku", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    drafted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "反向定制提案"
        verbose_name_plural = "反向定制提案"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(deposit_fen__gte=1)
                & models.Q(deposit_fen__lte=models.F("target_price_fen")),
                name="proposal_deposit_within_price",
            ),
            models.CheckConstraint(condition=models.Q(min_units__gte=1), name="proposal_min_1"),
            models.CheckConstraint(
                condition=models.Q(per_member_limit__gte=1), name="proposal_limit_1"
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="proposal_due_idx")]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(chain_id=int(path.strip("/").split("/")[0]))

    @property
    def balance_fen(self) -> int:
        """What is left to pay per unit at pickup (0 when the deposit is the whole price)."""
        return self.target_price_fen - self.deposit_fen


class PreOrderStatus(models.TextChoices):
    PENDING = "pending", "待付定金"
    COMMITTED = "committed", "已预订"
    CONVERTED = "converted", "已转订单"
    REFUND_DUE = "refund_due", "待退定金"
    REFUNDED = "refunded", "已退定金"
    WITHDRAWN = "withdrawn", "已撤回"
    CLOSED = "closed", "未支付关闭"


class PreOrder(models.Model):
    """One member's pre-order of a proposal, carried by an ordinary order (line at the target
    price, the deposit as what is paid online, the rest as ``balance_due_fen`` at pickup) so the
    payment, refund and pickup paths are the ones every order takes."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="preorders")
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="preorder")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=PreOrderStatus.choices, default=PreOrderStatus.PENDING
    )
    refund = models.ForeignKey(
        "orders.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set when the store received its delivery and set these units aside for the order.
    allocated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["proposal", "status"], name="preorder_status_idx")]

    def __str__(self) -> str:
        return f"{self.proposal_id}: {self.member_id} ×{self.quantity}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class PreOrderBuyer(models.Model):
    """Units each member holds of a proposal: the per-member limit, as a guarded upsert."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    units = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="one_buyer_row_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.proposal_id}: {self.member_id} ×{self.units}"


class ProductionOrder(models.Model):
    """What the supplier is asked to make when a proposal succeeds: one per proposal (the
    unique proposal is the exactly-once), with a line per store to deliver to."""

    proposal = models.OneToOneField(
        Proposal, on_delete=models.PROTECT, related_name="production_order"
    )
    supplier = models.ForeignKey(
        "catalog.Supplier", on_delete=models.PROTECT, related_name="production_orders"
    )
    number = models.CharField("生产单号", max_length=24, unique=True)
    total_units = models.PositiveIntegerField("总数量")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "生产订单"
        verbose_name_plural = "生产订单"

    def __str__(self) -> str:
        return self.number


class ProductionLine(models.Model):
    production_order = models.ForeignKey(
        ProductionOrder, on_delete=models.CASCADE, related_name="lines"
    )
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField("数量")
    received_at = models.DateTimeField("到店时间", null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["production_order", "store"], name="one_production_line_per_store"
            )
        ]

    def __str__(self) -> str:
        return f"{self.production_order_id} → {self.store_id} ×{self.quantity}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)
