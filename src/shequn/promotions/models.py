"""Promotions: flash sales (秒杀), group-buys (拼团), coupons (优惠券) and instant discounts (立减金).

Flash sale: a SKU at a sale price in a time window, with a quota for the chain or per store,
a per-member limit and a per-order limit.

Group-buy: a SKU at a team price; a paying member starts a team of N at their store or takes a
seat in one. A team that fills in time succeeds; one that does not fails and every payer is
refunded exactly once — or, only where HQ set an explicit threshold, succeeds with the real
members it has (never with fabricated ones).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.catalog.models import Category, Product, Sku, chain_q
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.orders.models import Order, Refund
from shequn.org.models import OrgNode


class QuotaScope(models.TextChoices):
    CHAIN = "chain", "全连锁共享"
    STORE = "store", "按门店分配"


class FlashSale(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("活动名称", max_length=100)
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    price_fen = models.PositiveIntegerField("秒杀价(分)")
    starts_at = models.DateTimeField("开始")
    ends_at = models.DateTimeField("结束")
    quota_scope = models.CharField("名额范围", max_length=8, choices=QuotaScope.choices)
    per_member_limit = models.PositiveIntegerField("每人限购")
    per_order_limit = models.PositiveIntegerField("每单限购")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = "秒杀"
        verbose_name_plural = "秒杀"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_fen__gte=1), name="flash_price_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="flash_window_ordered"
            ),
            models.CheckConstraint(
                condition=models.Q(per_member_limit__gte=1, per_order_limit__gte=1),
                name="flash_limits_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        """Staff see their chain's sales (a sale is chain-wide; its quotas say where it sells)."""
        return chain_q(path)


class FlashSaleQuota(models.Model):
    """Units a sale may sell: one row for the chain, or one per store. ``sold`` only moves by a
    guarded UPDATE and the CHECK below holds it, so a quota can never be oversold."""

    sale = models.ForeignKey(FlashSale, on_delete=models.CASCADE, related_name="quotas")
    store = models.ForeignKey(
        OrgNode, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quota = models.PositiveIntegerField("名额")
    sold = models.PositiveIntegerField("已售", default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sold__lte=models.F("quota")), name="flash_quota_not_oversold"
            ),
            models.UniqueConstraint(fields=["sale", "store"], name="flash_quota_once_per_store"),
            models.UniqueConstraint(
                fields=["sale"],
                condition=models.Q(store__isnull=True),
                name="flash_quota_one_chain_row",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sale} {self.sold}/{self.quota}"


class FlashSaleBuyer(models.Model):
    """How many units one member holds of one sale (the per-member limit's counter)."""

    # ``sale`` lookups use the (sale, member) constraint's index; no second one to write.
    sale = models.ForeignKey(
        FlashSale, on_delete=models.CASCADE, related_name="buyers", db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    bought = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "member"], name="flash_buyer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.bought}"


# --- group-buys (拼团) ------------------------------------------------------------------------
class UnfilledPolicy(models.TextChoices):
    REFUND = "refund", "未成团全部退款"
    AUTO_SUCCEED = "auto_succeed", "达到最低人数自动成团"


class GroupBuy(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("活动名称", max_length=100)
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    price_fen = models.PositiveIntegerField("拼团价(分)")
    team_size = models.PositiveSmallIntegerField("成团人数")
    team_minutes = models.PositiveIntegerField("成团时限(分钟)")
    starts_at = models.DateTimeField("开始")
    ends_at = models.DateTimeField("结束")
    per_member_limit = models.PositiveIntegerField("每人限购")
    per_order_limit = models.PositiveIntegerField("每单限购")
    unfilled_policy = models.CharField(
        "未成团处理", max_length=16, choices=UnfilledPolicy.choices, default=UnfilledPolicy.REFUND
    )
    # Only with AUTO_SUCCEED: a team that reaches this many real payers by its deadline succeeds.
    min_team_size = models.PositiveSmallIntegerField("最低成团人数", null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = "拼团"
        verbose_name_plural = "拼团"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_fen__gte=1), name="group_buy_price_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="group_buy_window_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(team_size__gte=2, team_minutes__gte=1),
                name="group_buy_team_sane",
            ),
            models.CheckConstraint(
                condition=models.Q(per_member_limit__gte=1, per_order_limit__gte=1),
                name="group_buy_limits_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(unfilled_policy="refund", min_team_size__isnull=True)
                | models.Q(
                    unfilled_policy="auto_succeed",
                    min_team_size__gte=2,
                    min_team_size__lt=models.F("team_size"),
                ),
                name="group_buy_threshold_explicit",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class TeamStatus(models.TextChoices):
    FORMING = "forming", "拼团中"
    SUCCEEDED = "succeeded", "已成团"
    FAILED = "failed", "未成团"


class GroupBuyTeam(models.Model):
    """One team at one store. ``joined`` only moves by guarded UPDATEs (``joined < size`` to take
    a seat), so the Nth seat goes to exactly one payer; the deadline lives here for the sweep."""

    campaign = models.ForeignKey(GroupBuy, on_delete=models.PROTECT, related_name="teams")
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    leader = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    size = models.PositiveSmallIntegerField()
    joined = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=TeamStatus.choices, default=TeamStatus.FORMING)
    deadline = models.DateTimeField()
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["status", "deadline"], name="team_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(joined__lte=models.F("size")), name="team_never_overfilled"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} #{self.pk} {self.joined}/{self.size}"

    @property
    def missing(self) -> int:
        """Seats still free (what the member pages show as 还差 N 人)."""
        return max(0, self.size - self.joined)

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class SeatStatus(models.TextChoices):
    PENDING = "pending", "待支付"
    SEATED = "seated", "已参团"
    REFUND_DUE = "refund_due", "待退款"  # the team failed, or the payer could not be seated
    REFUND_OPENED = "refund_opened", "已发起退款"
    LEFT = "left", "已退团"  # refunded while the team was still forming
    CLOSED = "closed", "未支付关闭"


class GroupBuySeat(models.Model):
    """One order's place in a group-buy: asked for at checkout (``wanted_team``, or none to start
    a team), taken when the payment lands (``team``). A refund is opened for it at most once."""

    campaign = models.ForeignKey(GroupBuy, on_delete=models.PROTECT, related_name="seats")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="group_buy_seat")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    wanted_team = models.ForeignKey(
        GroupBuyTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    team = models.ForeignKey(
        GroupBuyTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="seats"
    )
    status = models.CharField(max_length=16, choices=SeatStatus.choices, default=SeatStatus.PENDING)
    seated_at = models.DateTimeField(null=True, blank=True)
    refund = models.OneToOneField(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["seated_at", "id"]
        indexes = [models.Index(fields=["status"], name="seat_status_idx")]
        constraints = [
            # One person, one seat in a team: no member fills a team with their own orders.
            models.UniqueConstraint(
                fields=["team", "member"],
                condition=models.Q(status="seated"),
                name="seat_one_per_member_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} in {self.team_id}: {self.status}"


class GroupBuyBuyer(models.Model):
    """Units one member holds of one group-buy (the per-member limit's counter)."""

    campaign = models.ForeignKey(GroupBuy, on_delete=models.CASCADE, related_name="buyers")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    bought = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="group_buy_buyer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.bought}"


# --- coupons (优惠券) and instant discounts (立减金) ------------------------------------------
class CouponKind(models.TextChoices):
    COUPON = "coupon", "优惠券"  # claimed into the member's wallet, chosen at checkout
    INSTANT = "instant", "立减金"  # taken off at checkout by itself while its budget lasts


class CouponTemplate(models.Model):
    """What a coupon or an instant discount is worth and to whom. ``issued`` counts coupons
    claimed (or instant discounts used) and only moves by guarded UPDATEs under the CHECK."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=10, choices=CouponKind.choices)
    discount_fen = models.PositiveIntegerField("减免金额(分)")
    min_spend_fen = models.PositiveIntegerField("使用门槛(分)", default=0)  # 0 = 无门槛
    total_quantity = models.PositiveIntegerField("发放总量")
    issued = models.PositiveIntegerField("已发放", default=0)
    per_member_limit = models.PositiveIntegerField("每人限领")
    starts_at = models.DateTimeField("开始")
    ends_at = models.DateTimeField("结束")
    valid_days = models.PositiveSmallIntegerField("领取后有效天数", null=True, blank=True)
    products = models.ManyToManyField(Product, blank=True, related_name="+")
    categories = models.ManyToManyField(Category, blank=True, related_name="+")
    stacks_with_coupon = models.BooleanField("可与优惠券叠加", default=False)  # instant only
    applies_to_promotions = models.BooleanField("可用于秒杀/拼团", default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = "优惠券模板"
        verbose_name_plural = "优惠券模板"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(issued__lte=models.F("total_quantity")),
                name="coupon_never_over_issued",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_fen__gte=1), name="coupon_discount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(min_spend_fen=0)
                | models.Q(min_spend_fen__gt=models.F("discount_fen")),
                name="coupon_threshold_above_discount",
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="coupon_window_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="coupon", valid_days__gte=1)
                | models.Q(kind="instant", valid_days__isnull=True),
                name="coupon_validity_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class CouponHolder(models.Model):
    """How many of one template a member has taken (the per-member limit's counter)."""

    template = models.ForeignKey(CouponTemplate, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    taken = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "member"], name="coupon_holder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.taken}"


class Coupon(models.Model):
    """One claimed coupon in a member's wallet. Used by exactly one order: ``order`` is set by a
    guarded UPDATE (``order IS NULL``), and given back if that order closes unpaid."""

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discount_fen = models.PositiveIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "id"]
        indexes = [models.Index(fields=["member", "expires_at"], name="coupon_wallet_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(order__isnull=False),
                name="one_coupon_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.member_id}"


class InstantDiscountUse(models.Model):
    """An instant discount (立减金) taken off one order; removed if the order closes unpaid."""

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="+")
    discount_fen = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.template} −{self.discount_fen} on {self.order_id}"


# --- the weekly calendar (周期活动) ----------------------------------------------------------
class ScheduleKind(models.TextChoices):
    FLASH_SALE = "flash_sale", "秒杀"
    GROUP_BUY = "group_buy", "拼团"


class PromotionSchedule(models.Model):
    """A promotion that recurs on chosen weekdays (seed 002: Monday, Wednesday, Friday) at a
    local time, announced as a product card in chosen groups. The sweep turns the next seven
    days of it into real flash sales or group-buys (``ScheduledRun``), each exactly once."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=12, choices=ScheduleKind.choices)
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    price_fen = models.PositiveIntegerField("活动价(分)")
    weekdays = models.CharField("星期", max_length=7)  # ISO weekdays, e.g. "135" = 一三五
    start_time = models.TimeField("开始时间(北京时间)")
    duration_minutes = models.PositiveIntegerField("持续分钟")
    per_member_limit = models.PositiveIntegerField("每人限购")
    per_order_limit = models.PositiveIntegerField("每单限购")
    chain_quota = models.PositiveIntegerField("秒杀名额", null=True, blank=True)
    team_size = models.PositiveSmallIntegerField("成团人数", null=True, blank=True)
    team_minutes = models.PositiveIntegerField("成团时限(分钟)", null=True, blank=True)
    groups = models.ManyToManyField(CustomerGroup, blank=True, related_name="+")
    headline = models.CharField("推荐语", max_length=100, blank=True)
    created_by = models.ForeignKey(
        "org.Staff", on_delete=models.PROTECT, related_name="+"
    )  # the promotions are created in their name, with their permissions at the time
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start_time", "id"]
        verbose_name = "周期活动"
        verbose_name_plural = "周期活动"

    def __str__(self) -> str:
        return self.name

    @property
    def weekday_labels(self) -> str:
        """ "135" → "周一、周三、周五"."""
        return "、".join(f"周{'一二三四五六日'[int(d) - 1]}" for d in self.weekdays)

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class ScheduledRun(models.Model):
    """One day of a schedule, made real: at most one per schedule and day (unique), so sweeps
    running twice or at once never create a promotion twice."""

    schedule = models.ForeignKey(PromotionSchedule, on_delete=models.PROTECT, related_name="runs")
    run_date = models.DateField()
    flash_sale = models.ForeignKey(
        FlashSale, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group_buy = models.ForeignKey(
        GroupBuy, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    skipped_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "run_date"], name="one_run_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} {self.run_date}"
