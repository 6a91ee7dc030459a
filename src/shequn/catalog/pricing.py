"""Unit prices, computed on the server in fen. The one place a SKU's price for a quantity is
decided; promotions (issue 4) will wrap it, never bypass it."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Sku


def tiered_unit_price(list_price_fen: int, quantity: int, tiers: Iterable[tuple[int, int]]) -> int:
    """The tier with the largest ``min_quantity`` not above ``quantity``, else the list price.
    ``tiers`` are (min_quantity, unit_price_fen) pairs."""
    best, best_min = list_price_fen, 0
    for min_quantity, unit_price in tiers:
        if best_min < min_quantity <= quantity:
            best, best_min = unit_price, min_quantity
    return best


def unit_price_fen(sku: Sku, quantity: int) -> int:
    return tiered_unit_price(
        sku.price_fen, quantity, sku.tiers.values_list("min_quantity", "unit_price_fen")
    )
