"""Catalog and stock actions. Stock changes are guarded F() updates plus a movement row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F

from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from shequn.core.validation import clean_fen, clean_text
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import (
    Category,
    MovementReason,
    PriceTier,
    Product,
    PyramidRole,
    Sku,
    StockItem,
    StockMovement,
    Supplier,
)

MAX_STOCK_DELTA = 1_000_000


def _chain_of(staff: Staff) -> OrgNode:
    return OrgNode.objects.get(pk=staff.node.chain_id)


def create_supplier(
    *, acting: Staff, name: str, contact_name: str = "", contact_phone: str = ""
) -> Supplier:
    require_perm(acting, Perm.MANAGE_CATALOG)
    name = clean_text(name, "供应商名称", 100)
    chain = _chain_of(acting)
    try:
        with transaction.atomic():
            supplier = Supplier.objects.create(
                chain=chain,
                name=name,
                contact_name=clean_text(contact_name, "联系人", 50, required=False),
                contact_phone=clean_text(contact_phone, "联系电话", 20, required=False),
            )
            record_audit(
                acting.user, "catalog.supplier_created", target=supplier, scope_path=chain.path
            )
    except IntegrityError:
        raise Conflict(f"供应商「{name}」已存在", code="duplicate_supplier") from None
    return supplier


def get_or_create_category(*, acting: Staff, name: str) -> Category:
    require_perm(acting, Perm.MANAGE_CATALOG)
    category, _ = Category.objects.get_or_create(
        chain=_chain_of(acting), name=clean_text(name, "类目", 50)
    )
    return category


def create_product(
    *,
    acting: Staff,
    supplier: Supplier,
    name: str,
    pyramid_role: str = PyramidRole.REGULAR,
    category: Category | None = None,
    description: str = "",
    image_url: str = "",
) -> Product:
    require_perm(acting, Perm.MANAGE_CATALOG)
    if pyramid_role not in PyramidRole.values:
        raise InvalidInput(f"未知的金字塔角色: {pyramid_role}", code="invalid_pyramid_role")
    chain = _chain_of(acting)
    if supplier.chain_id != chain.pk or (category is not None and category.chain_id != chain.pk):
        raise NotFound("供应商或类目不存在")
    with transaction.atomic():
        product = Product.objects.create(
            chain=chain,
            supplier=supplier,
            category=category,
            name=clean_text(name, "商品名称", 100),
            description=clean_text(description, "描述", 5000, required=False),
            pyramid_role=pyramid_role,
            image_url=image_url[:200],
        )
        record_audit(acting.user, "catalog.product_created", target=product, scope_path=chain.path)
    return product


def add_sku(*, acting: Staff, product: Product, code: str, price_fen: int, spec: str = "") -> Sku:
    require_perm(acting, Perm.MANAGE_CATALOG)
    code = clean_text(code, "SKU 编码", 40)
    try:
        with transaction.atomic():
            sku = Sku.objects.create(
                product=product,
                chain_id=product.chain_id,
                code=code,
                spec=clean_text(spec, "规格", 100, required=False),
                price_fen=clean_fen(price_fen),
            )
            record_audit(
                acting.user,
                "catalog.sku_created",
                target=sku,
                details={"code": code, "price_fen": sku.price_fen},
            )
    except IntegrityError:
        raise Conflict(f"SKU 编码 {code} 已存在", code="duplicate_sku") from None
    return sku


def set_price_tiers(*, acting: Staff, sku: Sku, tiers: list[tuple[int, int]]) -> list[PriceTier]:
    """Replace the SKU's tiers: [(min_quantity, unit_price_fen), …]; each tier must be cheaper
    per unit than the list price and than every smaller tier (a tier that costs more is a typo)."""
    require_perm(acting, Perm.MANAGE_CATALOG)
    previous_price = sku.price_fen
    seen: set[int] = set()
    for min_quantity, unit_price in sorted(tiers):
        if isinstance(min_quantity, bool) or not isinstance(min_quantity, int) or min_quantity < 2:
            raise InvalidInput("阶梯起购数量须为不小于 2 的整数", code="invalid_tier")
        if min_quantity in seen:
            raise InvalidInput("阶梯起购数量不能重复", code="invalid_tier")
        seen.add(min_quantity)
        if clean_fen(unit_price, "阶梯单价") >= previous_price:
            raise InvalidInput("阶梯单价须低于原价和更小阶梯的单价", code="invalid_tier")
        previous_price = unit_price
    with transaction.atomic():
        PriceTier.objects.filter(sku=sku).delete()
        created = PriceTier.objects.bulk_create(
            PriceTier(sku=sku, min_quantity=q, unit_price_fen=p) for q, p in sorted(tiers)
        )
        record_audit(
            acting.user, "catalog.price_tiers_set", target=sku, details={"tiers": sorted(tiers)}
        )
    return created


@dataclass(frozen=True)
class StockChange:
    item: StockItem
    movement: StockMovement


def _check_store(acting: Staff, store: OrgNode) -> None:
    if store.kind != NodeKind.STORE:
        raise InvalidInput("库存只能记在门店", code="not_a_store")
    if not store.is_within(acting.node):
        raise NotFound("门店不存在")


def _check_delta(delta: object) -> int:
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidInput("变动数量须为非零整数", code="invalid_quantity")
    if abs(delta) > MAX_STOCK_DELTA:
        raise InvalidInput(f"单次变动不超过 {MAX_STOCK_DELTA}", code="invalid_quantity")
    return delta


def _move(
    *, store: OrgNode, sku: Sku, delta: int, reason: str, actor: Staff | None, note: str, ref: str
) -> StockChange:
    """Change on-hand quantity by ``delta``; a decrease may never cut into allocated units."""
    item, _ = StockItem.objects.get_or_create(store=store, sku=sku)
    if delta > 0:
        StockItem.objects.filter(pk=item.pk).update(quantity=F("quantity") + delta)
    else:
        moved = StockItem.objects.filter(
            pk=item.pk, quantity__gte=F("quantity_allocated") + (-delta)
        ).update(quantity=F("quantity") + delta)
        if not moved:
            raise RuleViolation(
                f"{sku} 在{store.name}的可用库存不足 {-delta} 件", code="insufficient_stock"
            )
    movement = StockMovement.objects.create(
        store=store,
        sku=sku,
        delta=delta,
        reason=reason,
        note=note[:200],
        reference=ref[:64],
        actor=actor.user if actor else None,
    )
    item.refresh_from_db()
    return StockChange(item=item, movement=movement)


def adjust_stock(
    *, acting: Staff, store: OrgNode, sku: Sku, delta: int, reason: str, note: str = ""
) -> StockChange:
    require_perm(acting, Perm.MANAGE_STOCK)
    _check_store(acting, store)
    if reason not in {MovementReason.ADJUSTMENT, MovementReason.RECEIPT, MovementReason.DAMAGE}:
        raise InvalidInput(f"不支持的库存变动原因: {reason}", code="invalid_reason")
    if sku.chain_id != store.chain_id:
        raise NotFound("SKU 不存在")
    with transaction.atomic():
        change = _move(
            store=store,
            sku=sku,
            delta=_check_delta(delta),
            reason=reason,
            actor=acting,
            note=note,
            ref="",
        )
        record_audit(
            acting.user,
            "catalog.stock_adjusted",
            target=change.item,
            scope_path=store.path,
            details={"delta": delta, "reason": reason},
        )
    return change


def transfer_stock(
    *, acting: Staff, source: OrgNode, target: OrgNode, sku: Sku, quantity: int, note: str = ""
) -> tuple[StockChange, StockChange]:
    """调拨: out of one store, into another, in one transaction; rows locked in id order."""
    require_perm(acting, Perm.MANAGE_STOCK)
    _check_store(acting, source)
    _check_store(acting, target)
    if source.pk == target.pk:
        raise InvalidInput("调出与调入门店不能相同", code="same_store")
    if _check_delta(quantity) < 0:
        raise InvalidInput("调拨数量须为正整数", code="invalid_quantity")
    if sku.chain_id != source.chain_id:
        raise NotFound("SKU 不存在")
    reference = f"TR-{uuid.uuid4().hex[:16]}"
    with transaction.atomic():
        # Fixed order (lower store id first) so two opposite transfers cannot deadlock.
        steps = sorted([(source, -quantity), (target, quantity)], key=lambda s: s[0].pk)
        changes = {}
        for store, delta in steps:
            changes[store.pk] = _move(
                store=store,
                sku=sku,
                delta=delta,
                reason=MovementReason.TRANSFER_OUT if delta < 0 else MovementReason.TRANSFER_IN,
                actor=acting,
                note=note,
                ref=reference,
            )
        record_audit(
            acting.user,
            "catalog.stock_transferred",
            target=sku,
            scope_path=source.path,
            details={"from": source.pk, "to": target.pk, "quantity": quantity},
        )
    return changes[source.pk], changes[target.pk]
