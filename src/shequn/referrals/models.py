"""The ledger: accounts, balanced transactions, append-only postings.

Every movement of money owed to or by someone — a sharer's commission, its release, a
withdrawal, a payout, a refund's claw-back — is one ``LedgerTransaction`` whose ``Posting`` rows
sum to zero. Postings and transactions are never updated or deleted (database triggers refuse
it, raw SQL included); a correction is a new, reversing transaction.

Sign: a posting's amount is what it adds to its account's balance (what the account holds). A
commission accrued moves money from the chain's commission expense (which goes negative: what
the chain has spent) to the sharer's pending account.

``Account.balance_fen`` is kept by the same transaction that writes the postings, through a
guarded UPDATE, and a CHECK holds every account that may not go negative at or above zero; a
test recomputes every balance from the postings.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.catalog.models import chain_q
from shequn.members.models import Member
from shequn.orders.models import Order
from shequn.org.models import OrgNode


class AccountKind(models.TextChoices):
    # the chain's
    COMMISSION_EXPENSE = "commission_expense", "佣金费用"
    PAYOUT_CLEARING = "payout_clearing", "提现出款"  # money that left to the sharers' wallets
    # a sharer's
    PENDING = "pending", "待结算"  # earned, frozen until fulfilment + the freeze period
    AVAILABLE = "available", "可提现"
    IN_FLIGHT = "in_flight", "提现中"
    RECEIVABLE = "receivable", "待追回"  # below zero: what a claw-back could not take back
    # staff rewards (cashiers' recruitment rewards, group owners' sales rewards), paid with payroll
    REWARD_EXPENSE = "reward_expense", "员工奖励费用"  # the chain's
    PAYROLL_CLEARING = "payroll_clearing", "员工奖励已发放"  # the chain's: paid with wages
    STAFF_EARNED = "staff_earned", "员工奖励待发放"  # a staff member's


# Accounts that may hold less than zero: the chain's own (they record what it spent or paid
# out), and a sharer's receivable, the one explicit, flagged claw-back policy: a refund that
# takes back more than the sharer still holds leaves the rest there as their debt. Pending,
# available and in-flight never go below zero.
MAY_GO_NEGATIVE = {
    AccountKind.COMMISSION_EXPENSE,
    AccountKind.PAYOUT_CLEARING,
    AccountKind.RECEIVABLE,
    AccountKind.REWARD_EXPENSE,
    AccountKind.PAYROLL_CLEARING,
    # A group owner's reward clawed back after it was paid with wages is netted against the
    # next month's: their earned balance may go below zero, and such a claw-back is flagged.
    AccountKind.STAFF_EARNED,
}


class Account(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=AccountKind.choices)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    staff = models.ForeignKey(  # a staff party's account (rewards), never with a member
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    balance_fen = models.BigIntegerField(default=0)
    may_go_negative = models.BooleanField(default=False)

    class Meta:
        verbose_name = "账户"
        verbose_name_plural = "账户"
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "kind", "member"], name="one_account_per_party_and_kind"
            ),
            models.UniqueConstraint(
                fields=["chain", "kind"],
                condition=models.Q(member__isnull=True, staff__isnull=True),
                name="one_chain_account_per_kind",
            ),
            models.UniqueConstraint(
                fields=["chain", "kind", "staff"],
                condition=models.Q(staff__isnull=False),
                name="one_staff_account_per_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(member__isnull=True) | models.Q(staff__isnull=True),
                name="account_has_one_party",
            ),
            models.CheckConstraint(
                condition=models.Q(may_go_negative=True) | models.Q(balance_fen__gte=0),
                name="account_never_below_zero_unless_allowed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}({self.member_id or 'chain'}): {self.balance_fen}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class TransactionKind(models.TextChoices):
    ACCRUE = "accrue", "佣金入账"
    UNFREEZE = "unfreeze", "佣金解冻"
    REVERSE = "reverse", "退款追回"
    WITHDRAW = "withdraw", "申请提现"
    PAYOUT_SUCCEEDED = "payout_succeeded", "提现成功"
    PAYOUT_FAILED = "payout_failed", "提现失败退回"
    ADJUSTMENT = "adjustment", "人工调整"
    RECRUITMENT_REWARD = "recruitment_reward", "拉新奖励"
    GROUP_OWNER_REWARD = "group_owner_reward", "群主奖励"
    GROUP_OWNER_REVERSE = "group_owner_reverse", "群主奖励追回"
    STAFF_REWARD_PAID = "staff_reward_paid", "员工奖励发放"


class LedgerTransaction(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    # Idempotency: the event that caused it ("accrue:order:12:sharer:7"); a retry finds it.
    key = models.CharField(max_length=120, unique=True)
    memo = models.CharField(max_length=200, blank=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # the party it concerns
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # or the staff party
    flagged = models.BooleanField(default=False)  # adjustments and claw-backs, for review
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "账务交易"
        verbose_name_plural = "账务交易"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class Posting(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="postings"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount_fen = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount_fen=0), name="posting_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_fen:+d}"


# --- sharers and their commission -------------------------------------------------------------
class SharerStatus(models.TextChoices):
    PENDING = "pending", "待审核"
    APPROVED = "approved", "已通过"
    REJECTED = "rejected", "未通过"
    SUSPENDED = "suspended", "已暂停"


class Sharer(models.Model):
    """A member who shares for commission (推客/拓客). No fee, ever. ``parent`` is the sharer who
    brought them in: level 2 is as deep as a chain goes (deeper is illegal pyramid selling),
    and recruiting sharers earns nothing by itself — only sales do."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="sharer")
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=12, choices=SharerStatus.choices, default=SharerStatus.PENDING
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    applied_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "推客"
        verbose_name_plural = "推客"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="sharer_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return f"推客 {self.member_id}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class RuleKind(models.TextChoices):
    PERCENT = "percent", "按实付比例"
    FIXED = "fixed", "每件固定金额"


class CommissionRule(models.Model):
    """A commission rate: for one product, else a category, else a product role, else the
    chain's default (no target). Level 2 (the sharer's parent) is optional. A percentage rule
    (basis points; the two levels together never exceed 100 %) or a fixed amount per unit
    (``level1_bp`` / ``level2_bp`` then hold fen, capped at the line's total) — both on what
    the order actually paid: a discount or a refund lowers them in proportion."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=RuleKind.choices, default=RuleKind.PERCENT)
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    category = models.ForeignKey(
        "catalog.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pyramid_role = models.CharField(max_length=20, blank=True)
    level1_bp = models.PositiveIntegerField("一级佣金(万分比)")
    level2_bp = models.PositiveIntegerField("二级佣金(万分比)", default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "佣金规则"
        verbose_name_plural = "佣金规则"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind=RuleKind.FIXED)
                | (
                    models.Q(level1_bp__lte=10_000)
                    & models.Q(level2_bp__lte=10_000 - models.F("level1_bp"))
                ),
                name="commission_rates_within_100_percent",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == RuleKind.FIXED:
            return f"¥{self.level1_bp / 100:.2f} / ¥{self.level2_bp / 100:.2f} 每件"
        return f"{self.level1_bp / 100:.2f}% / {self.level2_bp / 100:.2f}%"


class CommissionStatus(models.TextChoices):
    PENDING = "pending", "冻结中"
    AVAILABLE = "available", "可提现"
    HELD = "held", "待审核"  # a fraud signal: kept out of the sweep until a person decides
    REJECTED = "rejected", "审核未通过(已追回)"


class OrderCommission(models.Model):
    """One sharer's commission on one order (level 1 or 2), with the date it may be released:
    set at fulfilment (+ the freeze period), swept when due."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="commissions")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField()
    rate_bp = models.PositiveIntegerField()  # the blended rate over the order's lines, rounded
    # ... and exactly: ``rate_weight / rate_per`` basis points (``commission.Rate``)
    rate_weight = models.BigIntegerField(null=True, blank=True)
    rate_per = models.BigIntegerField(default=1)
    base_fen = models.PositiveIntegerField()  # what the order paid when it was accrued
    accrued_fen = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=CommissionStatus.choices, default=CommissionStatus.PENDING
    )
    hold_reason = models.CharField(max_length=100, blank=True)
    unfreeze_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "unfreeze_at"], name="commission_due_idx")]
        constraints = [
            models.UniqueConstraint(fields=["order", "member"], name="one_commission_per_sharer"),
            models.CheckConstraint(condition=models.Q(level__in=[1, 2]), name="two_levels_at_most"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} → {self.member_id} L{self.level}"

    @property
    def rate(self) -> tuple[int, int]:
        """(weight, per): the exact rate (rows from before exact rates: the rounded one)."""
        return (self.rate_bp if self.rate_weight is None else self.rate_weight, self.rate_per)

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(order__store__path__startswith=path)


# --- settlement and payouts ---------------------------------------------------------------------
class SettlementBatch(models.Model):
    """One settlement run (e.g. a month): every approved sharer's withdrawable balance above the
    minimum is withdrawn and paid out, at most once per sharer (``Payout`` is unique per batch
    and sharer), and a run killed half-way finishes the rest when started again."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    label = models.CharField("批次", max_length=32)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "label"], name="one_batch_per_label"),
        ]

    def __str__(self) -> str:
        return self.label

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class PayoutStatus(models.TextChoices):
    SUBMITTED = "submitted", "出款中"
    SUCCEEDED = "succeeded", "已到账"
    FAILED = "failed", "出款失败(已退回)"


class Payout(models.Model):
    batch = models.ForeignKey(SettlementBatch, on_delete=models.PROTECT, related_name="payouts")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    amount_fen = models.PositiveIntegerField()
    withdrawal = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="payout"
    )
    out_detail_no = models.CharField(max_length=32, unique=True)  # the transfer's own number
    status = models.CharField(
        max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.SUBMITTED
    )
    failure_reason = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "member"], name="one_payout_per_batch"),
        ]

    def __str__(self) -> str:
        return self.out_detail_no


class SimulatedTransfer(models.Model):
    """The local stand-in for the payout gateway's memory (demo and tests): the same transfer
    number always gets the same answer, as the real gateway's does."""

    out_detail_no = models.CharField(max_length=32, unique=True)
    amount_fen = models.PositiveIntegerField()
    result = models.CharField(max_length=8)  # SUCCESS or FAIL
    fail_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.out_detail_no} {self.result}"


# --- attribution: a customer bound to the sharer who first brought them -------------------------
class BindingMode(models.TextChoices):
    NONE = "none", "不绑定(只认最近一次分享链接)"
    DAYS = "days", "绑定 N 天"
    PERMANENT = "permanent", "永久绑定"
    NEW_ONLY = "new_only", "仅绑定新客(首单)"


class ReferralSettings(models.Model):
    """A chain's referral policy (``policy.py``). Without a row: no binding, a 7-day window,
    a 7-day freeze after handover, the deployment's minimum withdrawal, no group-owner reward."""

    chain = models.OneToOneField(OrgNode, on_delete=models.PROTECT, related_name="+")
    binding_mode = models.CharField(
        max_length=12, choices=BindingMode.choices, default=BindingMode.NONE
    )
    binding_days = models.PositiveSmallIntegerField(default=30)
    attribution_days = models.PositiveSmallIntegerField("归因窗口(天)", default=7)  # last touch
    freeze_days = models.PositiveSmallIntegerField("收货后冻结(天)", default=7)  # return window
    min_withdrawal_fen = models.PositiveIntegerField("最低提现(分)", default=1000)
    # The group owner's reward on every paid order placed from their group (seed 000: owners
    # who push products after an expert talk), on what was paid net of refunds. 0: none.
    group_owner_bp = models.PositiveIntegerField("群主奖励(万分比)", default=0)

    def __str__(self) -> str:
        return f"{self.chain_id}: {self.binding_mode}"


class CustomerBinding(models.Model):
    """A customer bound to a sharer: their orders credit that sharer even without a fresh link
    (a fresh link from another sharer wins for that order: last touch), until ``expires_at``."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="binding")
    sharer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    bound_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)  # None: permanent

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(member=models.F("sharer")), name="no_self_binding"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.sharer_id}"


# --- share codes: the short code behind a share link and a poster's QR ---------------------------
class ShareTargetKind(models.TextChoices):
    PRODUCT = "product", "商品"
    COUPON = "coupon", "优惠券"
    GROUP_BUY = "group_buy", "拼团"


SHARE_CODE_MAX = 32  # a WeChat mini-program code's ``scene`` holds at most 32 characters


class ShareCode(models.Model):
    """One sharer's link to one product, coupon or group-buy at one store: ``/m/s/<code>/``.
    The code is what a poster's QR carries (short enough for a mini-program ``scene``); a scan
    or click records the sharer as the member's last touch, and the order placed within the
    attribution window stores the sharer and ``share:<code>``."""

    code = models.CharField(max_length=SHARE_CODE_MAX, unique=True)
    sharer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="share_codes")
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=ShareTargetKind.choices)
    target_id = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "分享码"
        verbose_name_plural = "分享码"
        constraints = [
            models.UniqueConstraint(
                fields=["sharer", "store", "kind", "target_id"], name="one_code_per_share_target"
            ),
        ]

    def __str__(self) -> str:
        return self.code
