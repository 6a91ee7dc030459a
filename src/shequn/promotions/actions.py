"""Promotion actions: create and cancel flash sales."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from shequn.catalog.models import Sku
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.core.validation import clean_count, clean_fen, clean_text
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import FlashSale, FlashSaleQuota, QuotaScope

MAX_SALE_DAYS = 31
MAX_QUOTA = 1_000_000
MAX_LIMIT = 999


def _window(starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise InvalidInput("开始与结束时间须带时区", code="invalid_window")
    if ends_at <= starts_at:
        raise InvalidInput("结束时间须晚于开始时间", code="invalid_window")
    if ends_at - starts_at > timedelta(days=MAX_SALE_DAYS):
        raise InvalidInput(f"一场秒杀最长 {MAX_SALE_DAYS} 天", code="invalid_window")
    if ends_at <= timeutil.now():
        raise InvalidInput("结束时间已过", code="invalid_window")
    return starts_at, ends_at


def create_flash_sale(
    *,
    acting: Staff,
    sku: Sku,
    name: str,
    price_fen: int,
    starts_at: datetime,
    ends_at: datetime,
    per_member_limit: int,
    per_order_limit: int,
    chain_quota: int | None = None,
    store_quotas: dict[OrgNode, int] | None = None,
) -> FlashSale:
    """A flash sale of one SKU: either one quota the whole chain shares, or a quota per store
    (each store within the caller's scope). The sale price must be below the list price."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    chain_id = acting.node.chain_id
    if sku.chain_id != chain_id:
        raise NotFound("商品不存在")
    name = clean_text(name, "活动名称", 100)
    price_fen = clean_fen(price_fen, "秒杀价")
    if price_fen >= sku.price_fen:
        raise InvalidInput(f"秒杀价须低于原价 {sku.price_fen} 分", code="flash_price_not_lower")
    starts_at, ends_at = _window(starts_at, ends_at)
    per_member_limit = clean_count(per_member_limit, "每人限购", MAX_LIMIT)
    per_order_limit = clean_count(per_order_limit, "每单限购", MAX_LIMIT)
    if (chain_quota is None) == (not store_quotas):
        raise InvalidInput("须给出全连锁名额或各门店名额(二选一)", code="invalid_quota")
    if chain_quota is not None:
        rows: list[tuple[OrgNode | None, int]] = [
            (None, clean_count(chain_quota, "名额", MAX_QUOTA))
        ]
    else:
        rows = []
        for store, quota in (store_quotas or {}).items():
            if store.kind != NodeKind.STORE or not store.is_within(acting.node):
                raise NotFound("门店不存在")
            rows.append((store, clean_count(quota, f"{store.name}的名额", MAX_QUOTA)))
    with transaction.atomic():
        sale = FlashSale.objects.create(
            chain_id=chain_id,
            name=name,
            sku=sku,
            price_fen=price_fen,
            starts_at=starts_at,
            ends_at=ends_at,
            quota_scope=QuotaScope.CHAIN if chain_quota is not None else QuotaScope.STORE,
            per_member_limit=per_member_limit,
            per_order_limit=per_order_limit,
            created_by=acting.user,
        )
        FlashSaleQuota.objects.bulk_create(
            FlashSaleQuota(sale=sale, store=store, quota=quota) for store, quota in rows
        )
        record_audit(
            acting.user,
            "promotions.flash_sale_created",
            target=sale,
            scope_path=acting.node.path,
            details={
                "sku": sku.pk,
                "price_fen": price_fen,
                "quota": sum(quota for _, quota in rows),
            },
        )
    return sale


def cancel_flash_sale(*, acting: Staff, sale: FlashSale) -> FlashSale:
    """Stop a sale now: no new purchases; orders already placed stand."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    if sale.chain_id != acting.node.chain_id:
        raise NotFound("秒杀活动不存在")
    with transaction.atomic():
        if not FlashSale.objects.filter(pk=sale.pk, cancelled_at__isnull=True).update(
            cancelled_at=timeutil.now()
        ):
            raise RuleViolation("该秒杀已取消", code="flash_cancelled")
        record_audit(
            acting.user, "promotions.flash_sale_cancelled", target=sale, scope_path=acting.node.path
        )
    sale.refresh_from_db()
    return sale
