"""Flash sales: a SKU at a sale price in a time window, with a quota for the chain or per store,
a per-member limit and a per-order limit."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.catalog.models import Sku, chain_q
from shequn.members.models import Member
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

    sale = models.ForeignKey(FlashSale, on_delete=models.CASCADE, related_name="buyers")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    bought = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "member"], name="flash_buyer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.bought}"
