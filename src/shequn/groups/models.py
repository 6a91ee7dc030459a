"""Groups, memberships, invitation codes and cashier recruitment rewards.

Invariants kept by the database, not by Python checks:
- ``0 <= member_count <= capacity <= 500`` (CHECK), changed only by conditional UPDATEs;
- one *active* membership per (group, member) (partial UNIQUE);
- one recruitment reward per (group, member), ever (UNIQUE) — rejoining earns nobody twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.members.models import Member
from shequn.org.models import OrgNode

WECHAT_GROUP_CAP = 500


class GroupTheme(models.TextChoices):
    VIP = "vip", "VIP群"
    MOTHERS = "mothers", "宝妈群"
    HOUSING_ESTATE = "housing_estate", "楼盘群"
    HOBBY = "hobby", "兴趣群"
    OTHER = "other", "其他"


class GroupStatus(models.TextChoices):
    ACTIVE = "active", "运营中"
    CLOSED = "closed", "已关闭"


class ModerationPolicy(models.TextChoices):
    MANUAL = "manual", "人工处理(进入审核队列)"
    WARN_THEN_REMOVE = "warn_then_remove", "先警告, 再犯自动移出"


class CustomerGroup(models.Model):
    store = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="groups", verbose_name="门店"
    )
    name = models.CharField("群名称", max_length=100)
    theme = models.CharField("主题", max_length=20, choices=GroupTheme.choices)
    rules = models.TextField("群规", blank=True)
    capacity = models.PositiveIntegerField("容量", default=WECHAT_GROUP_CAP)
    member_count = models.PositiveIntegerField("成员数", default=0)
    status = models.CharField(
        "状态", max_length=16, choices=GroupStatus.choices, default=GroupStatus.ACTIVE
    )
    moderation = models.CharField(
        "广告处理", max_length=20, choices=ModerationPolicy.choices, default=ModerationPolicy.MANUAL
    )
    # The WeCom customer group's chat id (roomid / chat_id): how chat records and
    # group-change callbacks name it.
    external_chat_id = models.CharField(
        "企业微信群ID", max_length=64, null=True, blank=True, unique=True
    )
    # WeCom's member_version of the group as we last applied it: a change callback whose
    # LastMemVer is another one means a callback was lost or came out of order, and the group
    # is marked for a full resync (``wecom_sync``), done by the sweep at ``wecom_resync_due_at``.
    wecom_member_version = models.CharField("企业微信成员版本", max_length=64, blank=True)
    wecom_resync_due_at = models.DateTimeField("待同步企业微信成员", null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_groups",
        verbose_name="群主(员工)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["store__path", "id"]
        verbose_name = "社群"
        verbose_name_plural = "社群"
        indexes = [
            models.Index(
                fields=["wecom_resync_due_at"],
                name="group_wecom_resync_due_idx",
                condition=models.Q(wecom_resync_due_at__isnull=False),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(capacity__gte=1, capacity__lte=WECHAT_GROUP_CAP),
                name="group_capacity_range",
            ),
            models.CheckConstraint(
                condition=models.Q(member_count__lte=models.F("capacity")),
                name="group_not_over_capacity",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)

    @property
    def room(self) -> int:
        return max(0, self.capacity - self.member_count)


class MembershipRole(models.TextChoices):
    OWNER = "owner", "群主"
    ASSISTANT = "assistant", "群助理"
    HONORARY_OWNER = "honorary_owner", "荣誉群主"
    TEAM_LEADER = "team_leader", "组长"
    COMMITTEE = "committee", "委员"
    MEMBER = "member", "成员"


class JoinChannel(models.TextChoices):
    STORE_QR = "store_qr", "门店二维码"
    STAFF_INVITE = "staff_invite", "员工邀请"
    MEMBER_REFERRAL = "member_referral", "会员推荐"
    IMPORT = "import", "导入"
    WECOM = "wecom", "企业微信群(回调)"


class GroupMembership(models.Model):
    """One stay of a member in a group. Leaving closes it; rejoining opens a new row."""

    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="memberships")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(
        "群内角色", max_length=20, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )
    join_channel = models.CharField("入群渠道", max_length=20, choices=JoinChannel.choices)
    invited_by_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="邀请员工",
    )
    invited_by_member = models.ForeignKey(
        Member,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="推荐会员",
    )
    invitation = models.ForeignKey(
        "Invitation", null=True, blank=True, on_delete=models.PROTECT, related_name="joins"
    )
    joined_at = models.DateTimeField("入群时间", auto_now_add=True)
    left_at = models.DateTimeField("退群时间", null=True, blank=True)
    left_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-joined_at", "-id"]
        verbose_name = "群成员"
        verbose_name_plural = "群成员"
        constraints = [
            models.UniqueConstraint(
                fields=["group", "member"],
                condition=models.Q(left_at__isnull=True),
                name="one_active_membership",
            )
        ]
        indexes = [models.Index(fields=["member", "group"])]

    def __str__(self) -> str:
        return f"{self.member} @ {self.group}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(group__store__path__startswith=path)


class InvitationKind(models.TextChoices):
    STORE = "store", "门店码"  # picks a group of the store (optionally of one theme) with room
    GROUP = "group", "群码"
    STAFF = "staff", "员工码"  # a staff member's own code: joins earn them the recruitment reward


class Invitation(models.Model):
    """A signed, expiring, revocable invitation; the QR code carries ``token.signature``."""

    token = models.CharField(max_length=16, unique=True)
    kind = models.CharField("类型", max_length=10, choices=InvitationKind.choices)
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="invitations")
    group = models.ForeignKey(
        CustomerGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="invitations"
    )
    theme = models.CharField(max_length=20, choices=GroupTheme.choices, blank=True)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invitations",
        verbose_name="邀请员工",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField("过期时间")
    revoked_at = models.DateTimeField("作废时间", null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "邀请码"
        verbose_name_plural = "邀请码"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="group") | models.Q(group__isnull=False),
                name="group_invitation_has_group",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="staff") | models.Q(staff__isnull=False),
                name="staff_invitation_has_staff",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.token}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class RecruitmentReward(models.Model):
    """Cashier recruitment reward (步步高): ¥0.50 for each of a group's first 100 members,
    ¥1.00 for each member beyond. The referral issue moves these into the ledger."""

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recruitment_rewards"
    )
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="rewards")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    membership = models.OneToOneField(GroupMembership, on_delete=models.PROTECT, related_name="+")
    member_ordinal = models.PositiveIntegerField("入群序号")
    amount_fen = models.PositiveIntegerField("奖励(分)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "拉新奖励"
        verbose_name_plural = "拉新奖励"
        constraints = [
            models.UniqueConstraint(fields=["group", "member"], name="one_reward_per_member_group")
        ]

    def __str__(self) -> str:
        return f"{self.staff} +{self.amount_fen}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class GroupChangeEvent(models.Model):
    """A WeCom customer-group change callback, kept once (WeCom may repeat, reorder or lose them:
    ``key`` de-duplicates, and what was done is written down)."""

    key = models.CharField(max_length=200, unique=True)
    chat_id = models.CharField(max_length=64)
    change_type = models.CharField(max_length=20)
    update_detail = models.CharField(max_length=20, blank=True)
    group = models.ForeignKey(
        CustomerGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(max_length=200, blank=True)
    payload = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "企业微信群变更"
        verbose_name_plural = "企业微信群变更"

    def __str__(self) -> str:
        return self.key
