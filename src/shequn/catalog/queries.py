"""Reads of catalog and stock: the catalog is chain-wide, stock is scoped by store; a
supplier's account reads only what its own supplier makes."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from shequn.org.models import Staff
from shequn.org.roles import Perm, Role
from shequn.org.scoping import get_scoped, scoped

from .models import Product, Sku, StockItem, StockMovement, Supplier

M = TypeVar("M", bound=Model)


def own_products_only(qs: QuerySet[M], staff: Staff, product: str) -> QuerySet[M]:
    """``qs`` narrowed, for a supplier's account, to the rows of products its own supplier
    makes (``product``: the path to the row's product, "" for products): its account sits at
    the chain's root, so node scope alone would show it every supplier's catalog and stock."""
    if staff.role != Role.SUPPLIER:
        return qs
    prefix = f"{product}__" if product else ""
    return qs.filter(**{f"{prefix}supplier__accounts": staff.user})


def visible_suppliers(staff: Staff) -> QuerySet[Supplier]:
    return scoped(Supplier.objects.all(), staff, Perm.MANAGE_CATALOG)


def visible_products(staff: Staff) -> QuerySet[Product]:
    products = scoped(
        Product.objects.select_related("supplier", "category").prefetch_related("skus__tiers"),
        staff,
    )
    return own_products_only(products, staff, "")


def access_product(staff: Staff, product_id: object) -> Product:
    return get_scoped(visible_products(staff), staff, product_id)


def access_sku(staff: Staff, sku_id: object) -> Sku:
    skus = own_products_only(Sku.objects.select_related("product"), staff, "product")
    return get_scoped(skus, staff, sku_id)


def visible_stock(staff: Staff) -> QuerySet[StockItem]:
    """Stock in the caller's stores; a supplier's: its own products' in every store."""
    stock = scoped(
        StockItem.objects.select_related("store", "sku__product"), staff, Perm.VIEW_STOCK
    )
    return own_products_only(stock, staff, "sku__product")


def visible_movements(staff: Staff) -> QuerySet[StockMovement]:
    return scoped(StockMovement.objects.select_related("store", "sku"), staff, Perm.MANAGE_STOCK)
