"""Reads of catalog and stock: the catalog is chain-wide, stock is scoped by store."""

from __future__ import annotations

from django.db.models import QuerySet

from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import get_scoped, scoped

from .models import Product, Sku, StockItem, StockMovement, Supplier


def visible_suppliers(staff: Staff) -> QuerySet[Supplier]:
    return scoped(Supplier.objects.all(), staff, Perm.MANAGE_CATALOG)


def visible_products(staff: Staff) -> QuerySet[Product]:
    return scoped(
        Product.objects.select_related("supplier", "category").prefetch_related("skus__tiers"),
        staff,
    )


def access_product(staff: Staff, product_id: object) -> Product:
    return get_scoped(visible_products(staff), staff, product_id)


def access_sku(staff: Staff, sku_id: object) -> Sku:
    return get_scoped(Sku.objects.select_related("product"), staff, sku_id)


def visible_stock(staff: Staff) -> QuerySet[StockItem]:
    return scoped(StockItem.objects.select_related("store", "sku__product"), staff)


def visible_movements(staff: Staff) -> QuerySet[StockMovement]:
    return scoped(StockMovement.objects.select_related("store", "sku"), staff, Perm.MANAGE_STOCK)
