"""Catalog and per-store stock.

Stock follows Saleor's shape plus the constraint Saleor lacks: a ``StockItem`` per (store, SKU)
with ``quantity`` (on hand) and ``quantity_allocated`` (held by unpaid and unfulfilled orders),
and a CHECK that ``0 <= quantity_allocated <= quantity``. Every change is a guarded F() UPDATE;
every change of ``quantity`` is also a row in the append-only ``StockMovement`` log.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.org.models import OrgNode


def chain_q(path: str) -> models.Q:
    """Chain-wide objects (the catalog) are visible to every staff member of that chain."""
    return models.Q(chain_id=int(path.strip("/").split("/")[0]))


class Supplier(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("供应商名称", max_length=100)
    contact_name = models.CharField("联系人", max_length=50, blank=True)
    contact_phone = models.CharField("联系电话", max_length=20, blank=True)
    # The supplier's own logins (role 供应商): what they may see is decided by this link.
    accounts = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="supplier_of"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "供应商"
        verbose_name_plural = "供应商"
        constraints = [
            models.UniqueConstraint(fields=["chain", "name"], name="supplier_name_unique_per_chain")
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class PyramidRole(models.TextChoices):
    """The product pyramid (产品金字塔): what a product is for in the community."""

    TRAFFIC = "traffic", "引流款"
    STRATEGIC = "strategic", "战略款"
    REGULAR = "regular", "常规款"
    MEMBER_WELFARE = "member_welfare", "会员福利款"
    FISSION = "fission", "裂变款"


class Category(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    name = models.CharField("类目", max_length=50)

    class Meta:
        ordering = ["id"]
        verbose_name = "类目"
        verbose_name_plural = "类目"
        constraints = [
            models.UniqueConstraint(fields=["chain", "name"], name="category_name_unique_per_chain")
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class Product(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField("商品名称", max_length=100)
    description = models.TextField("描述", blank=True)
    pyramid_role = models.CharField(
        "金字塔角色", max_length=20, choices=PyramidRole.choices, default=PyramidRole.REGULAR
    )
    image_url = models.URLField("图片", blank=True)
    is_active = models.BooleanField("上架", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "商品"
        verbose_name_plural = "商品"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class Sku(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus")
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    code = models.CharField("SKU 编码", max_length=40)
    spec = models.CharField("规格", max_length=100, blank=True)
    price_fen = models.PositiveIntegerField("单价(分)")
    is_active = models.BooleanField("在售", default=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "SKU"
        verbose_name_plural = "SKU"
        constraints = [
            models.UniqueConstraint(fields=["chain", "code"], name="sku_code_unique_per_chain"),
            models.CheckConstraint(condition=models.Q(price_fen__gt=0), name="sku_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.spec}".strip()

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return chain_q(path)


class PriceTier(models.Model):
    """Tiered price (阶梯价格): from ``min_quantity`` units on, each unit costs ``unit_price_fen``."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="tiers")
    min_quantity = models.PositiveIntegerField("起购数量")
    unit_price_fen = models.PositiveIntegerField("阶梯单价(分)")

    class Meta:
        ordering = ["sku", "min_quantity"]
        constraints = [
            models.UniqueConstraint(fields=["sku", "min_quantity"], name="one_tier_per_quantity"),
            models.CheckConstraint(condition=models.Q(min_quantity__gte=2), name="tier_min_qty_2"),
            models.CheckConstraint(
                condition=models.Q(unit_price_fen__gt=0), name="tier_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"≥{self.min_quantity}: {self.unit_price_fen}"


class StockItem(models.Model):
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="stock_items")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="stock_items")
    quantity = models.PositiveIntegerField("在库数量", default=0)
    quantity_allocated = models.PositiveIntegerField("已占用", default=0)

    class Meta:
        ordering = ["store", "sku"]
        verbose_name = "门店库存"
        verbose_name_plural = "门店库存"
        constraints = [
            models.UniqueConstraint(fields=["store", "sku"], name="one_stock_row_per_store_sku"),
            models.CheckConstraint(
                condition=models.Q(quantity_allocated__lte=models.F("quantity")),
                name="stock_allocated_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store}/{self.sku}: {self.available}"

    @property
    def available(self) -> int:
        return self.quantity - self.quantity_allocated

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class MovementReason(models.TextChoices):
    ADJUSTMENT = "adjustment", "盘点调整"
    RECEIPT = "receipt", "到货入库"
    TRANSFER_OUT = "transfer_out", "调拨出库"
    TRANSFER_IN = "transfer_in", "调拨入库"
    SALE = "sale", "销售出库"
    DAMAGE = "damage", "报损"


class StockMovement(models.Model):
    """Append-only: every change of on-hand quantity, with who and why."""

    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    delta = models.IntegerField("变动数量")
    reason = models.CharField("原因", max_length=20, choices=MovementReason.choices)
    note = models.CharField("备注", max_length=200, blank=True)
    reference = models.CharField("关联单号", max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "库存流水"
        verbose_name_plural = "库存流水"
        constraints = [
            models.CheckConstraint(condition=~models.Q(delta=0), name="movement_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.store}/{self.sku} {self.delta:+d} {self.reason}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("stock movements are append-only")
        super().save(*args, **kwargs)

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)
