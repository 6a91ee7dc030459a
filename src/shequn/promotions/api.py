"""Promotions API for staff: flash sales (create, list, detail with sold/quota, cancel)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from shequn.catalog.queries import access_sku
from shequn.org.api import staff_of
from shequn.org.scoping import access_node

from . import actions
from .models import FlashSale, FlashSaleQuota
from .queries import access_flash_sale, visible_flash_sales

router = Router(tags=["营销活动"])


class StoreQuotaIn(Schema):
    store_id: int
    quota: int = Field(..., ge=1, le=actions.MAX_QUOTA, strict=True)


class FlashSaleIn(Schema):
    sku_id: int
    name: str = Field(..., min_length=1, max_length=100)
    price_fen: int = Field(..., ge=1, strict=True, description="秒杀价(分)")
    starts_at: datetime
    ends_at: datetime
    per_member_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    per_order_limit: int = Field(..., ge=1, le=actions.MAX_LIMIT, strict=True)
    chain_quota: int | None = Field(None, ge=1, le=actions.MAX_QUOTA, strict=True)
    store_quotas: list[StoreQuotaIn] = Field(default_factory=list, max_length=500)


class QuotaOut(Schema):
    store_id: int | None
    quota: int
    sold: int


class FlashSaleOut(Schema):
    id: int
    name: str
    sku_id: int
    product_name: str
    price_fen: int
    list_price_fen: int
    starts_at: datetime
    ends_at: datetime
    quota_scope: str
    per_member_limit: int
    per_order_limit: int
    cancelled_at: datetime | None
    quotas: list[QuotaOut]

    @staticmethod
    def resolve_product_name(obj: FlashSale) -> str:
        return obj.sku.product.name

    @staticmethod
    def resolve_list_price_fen(obj: FlashSale) -> int:
        return obj.sku.price_fen

    @staticmethod
    def resolve_quotas(obj: FlashSale) -> list[FlashSaleQuota]:
        return list(obj.quotas.all())


@router.get("/flash-sales", response=list[FlashSaleOut], summary="秒杀活动(本连锁)")
@paginate(LimitOffsetPagination)
def list_flash_sales(request: HttpRequest) -> object:
    return visible_flash_sales(staff_of(request))


@router.post("/flash-sales", response={201: FlashSaleOut}, summary="创建秒杀")
def create_flash_sale(request: HttpRequest, payload: FlashSaleIn) -> Status[FlashSale]:
    staff = staff_of(request)
    sale = actions.create_flash_sale(
        acting=staff,
        sku=access_sku(staff, payload.sku_id),
        name=payload.name,
        price_fen=payload.price_fen,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        per_member_limit=payload.per_member_limit,
        per_order_limit=payload.per_order_limit,
        chain_quota=payload.chain_quota,
        store_quotas={access_node(staff, q.store_id): q.quota for q in payload.store_quotas},
    )
    return Status(201, access_flash_sale(staff, sale.pk))


@router.get("/flash-sales/{sale_id}", response=FlashSaleOut, summary="秒杀详情(含各门店已售)")
def get_flash_sale(request: HttpRequest, sale_id: int) -> FlashSale:
    return access_flash_sale(staff_of(request), sale_id)


@router.post("/flash-sales/{sale_id}/cancel", response=FlashSaleOut, summary="取消秒杀")
def cancel_flash_sale(request: HttpRequest, sale_id: int) -> FlashSale:
    staff = staff_of(request)
    actions.cancel_flash_sale(acting=staff, sale=access_flash_sale(staff, sale_id))
    return access_flash_sale(staff, sale_id)
