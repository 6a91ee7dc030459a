"""Catalog and stock API: HQ manages products; stores see and move their own stock."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.core.pagination import Page
from shequn.core.validation import MAX_PRICE_FEN
from shequn.org.api import staff_of
from shequn.org.scoping import access_node, get_scoped, within_node

from . import actions
from .models import MovementReason, Product, PyramidRole, Sku, StockItem, StockMovement, Supplier
from .queries import (
    access_product,
    access_sku,
    visible_movements,
    visible_products,
    visible_stock,
    visible_suppliers,
)

router = Router(tags=["商品与库存"])


class SupplierOut(Schema):
    id: int
    name: str
    contact_name: str


class SupplierIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    contact_name: str = Field("", max_length=50)
    contact_phone: str = Field("", max_length=20)


class TierOut(Schema):
    min_quantity: int
    unit_price_fen: int


class SkuOut(Schema):
    id: int
    code: str
    spec: str
    price_fen: int
    is_active: bool
    tiers: list[TierOut]


class ProductOut(Schema):
    id: int
    name: str
    description: str
    pyramid_role: PyramidRole
    supplier_id: int
    category_id: int | None
    image_url: str
    is_active: bool
    skus: list[SkuOut]


class ProductIn(Schema):
    supplier_id: int
    name: str = Field(..., min_length=1, max_length=100)
    pyramid_role: PyramidRole = PyramidRole.REGULAR
    category: str | None = Field(None, max_length=50)
    description: str = Field("", max_length=5000)


class SkuIn(Schema):
    code: str = Field(..., min_length=1, max_length=40)
    spec: str = Field("", max_length=100)
    price_fen: int = Field(..., ge=1, le=MAX_PRICE_FEN, strict=True)


class TiersIn(Schema):
    tiers: list[TierOut] = Field(..., max_length=10)


class StockOut(Schema):
    id: int
    store_id: int
    store_name: str
    sku_id: int
    sku_code: str
    product_name: str
    quantity: int
    quantity_allocated: int
    available: int

    @staticmethod
    def resolve_store_name(obj: StockItem) -> str:
        return obj.store.name

    @staticmethod
    def resolve_sku_code(obj: StockItem) -> str:
        return obj.sku.code

    @staticmethod
    def resolve_product_name(obj: StockItem) -> str:
        return obj.sku.product.name


class AdjustIn(Schema):
    store_id: int
    sku_id: int
    delta: int = Field(..., strict=True, description="正数入库, 负数出库")
    reason: MovementReason
    note: str = Field("", max_length=200)


class TransferIn(Schema):
    from_store_id: int
    to_store_id: int
    sku_id: int
    quantity: int = Field(..., ge=1, strict=True)
    note: str = Field("", max_length=200)


class MovementOut(Schema):
    id: int
    store_id: int
    sku_id: int
    delta: int
    reason: str
    note: str
    reference: str
    created_at: datetime


@router.get("/suppliers", response=list[SupplierOut], summary="供应商")
@paginate(Page)
def list_suppliers(request: HttpRequest) -> object:
    return visible_suppliers(staff_of(request))


@router.post("/suppliers", response={201: SupplierOut}, summary="新建供应商")
def create_supplier(request: HttpRequest, payload: SupplierIn) -> Status[Supplier]:
    supplier = actions.create_supplier(
        acting=staff_of(request),
        name=payload.name,
        contact_name=payload.contact_name,
        contact_phone=payload.contact_phone,
    )
    return Status(201, supplier)


@router.get("/products", response=list[ProductOut], summary="商品(本连锁)")
@paginate(Page)
def list_products(request: HttpRequest, pyramid_role: PyramidRole | None = None) -> object:
    qs = visible_products(staff_of(request))
    return qs.filter(pyramid_role=pyramid_role) if pyramid_role else qs


@router.get("/products/{product_id}", response=ProductOut, summary="商品详情")
def get_product(request: HttpRequest, product_id: int) -> Product:
    return access_product(staff_of(request), product_id)


@router.post("/products", response={201: ProductOut}, summary="新建商品")
def create_product(request: HttpRequest, payload: ProductIn) -> Status[Product]:
    staff = staff_of(request)
    supplier = get_scoped(visible_suppliers(staff), staff, payload.supplier_id)
    category = (
        actions.get_or_create_category(acting=staff, name=payload.category)
        if payload.category
        else None
    )
    product = actions.create_product(
        acting=staff,
        supplier=supplier,
        name=payload.name,
        pyramid_role=payload.pyramid_role,
        category=category,
        description=payload.description,
    )
    return Status(201, access_product(staff, product.pk))


@router.post("/products/{product_id}/skus", response={201: SkuOut}, summary="新增 SKU")
def add_sku(request: HttpRequest, product_id: int, payload: SkuIn) -> Status[Sku]:
    staff = staff_of(request)
    product = access_product(staff, product_id)
    sku = actions.add_sku(
        acting=staff,
        product=product,
        code=payload.code,
        price_fen=payload.price_fen,
        spec=payload.spec,
    )
    return Status(201, sku)


@router.put("/skus/{sku_id}/tiers", response=SkuOut, summary="设置阶梯价格")
def set_tiers(request: HttpRequest, sku_id: int, payload: TiersIn) -> Sku:
    staff = staff_of(request)
    sku = access_sku(staff, sku_id)
    actions.set_price_tiers(
        acting=staff, sku=sku, tiers=[(t.min_quantity, t.unit_price_fen) for t in payload.tiers]
    )
    return access_sku(staff, sku_id)


@router.get("/stock", response=list[StockOut], summary="门店库存(本部门及下级)")
@paginate(Page)
def list_stock(
    request: HttpRequest, store_id: int | None = None, sku_id: int | None = None
) -> object:
    staff = staff_of(request)
    qs = visible_stock(staff)
    if store_id is not None:
        qs = within_node(qs, staff, store_id)
    if sku_id is not None:
        qs = qs.filter(sku=access_sku(staff, sku_id))
    return qs


@router.get("/stock/movements", response=list[MovementOut], summary="库存流水")
@paginate(Page)
def list_movements(request: HttpRequest, store_id: int | None = None) -> object:
    staff = staff_of(request)
    qs = visible_movements(staff)
    if store_id is not None:
        qs = within_node(qs, staff, store_id)
    return qs


@router.post("/stock/adjust", response=MovementOut, summary="库存调整(入库/盘点/报损)")
def adjust_stock(request: HttpRequest, payload: AdjustIn) -> StockMovement:
    staff = staff_of(request)
    change = actions.adjust_stock(
        acting=staff,
        store=access_node(staff, payload.store_id),
        sku=access_sku(staff, payload.sku_id),
        delta=payload.delta,
        reason=payload.reason,
        note=payload.note,
    )
    return change.movement


@router.post("/stock/transfer", response=list[MovementOut], summary="门店调拨")
def transfer_stock(request: HttpRequest, payload: TransferIn) -> list[StockMovement]:
    staff = staff_of(request)
    out, into = actions.transfer_stock(
        acting=staff,
        source=access_node(staff, payload.from_store_id),
        target=access_node(staff, payload.to_store_id),
        sku=access_sku(staff, payload.sku_id),
        quantity=payload.quantity,
        note=payload.note,
    )
    return [out.movement, into.movement]
