"""Reads of promotions, scoped to the acting staff member's chain."""

from __future__ import annotations

from django.db.models import QuerySet

from shequn.org.models import Staff
from shequn.org.scoping import get_scoped, scoped

from .models import FlashSale


def visible_flash_sales(staff: Staff) -> QuerySet[FlashSale]:
    return scoped(
        FlashSale.objects.select_related("sku__product").prefetch_related("quotas__store"), staff
    )


def access_flash_sale(staff: Staff, sale_id: object) -> FlashSale:
    return get_scoped(visible_flash_sales(staff), staff, sale_id)
