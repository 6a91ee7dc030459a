"""Unit prices, computed on the server in fen. The one place a SKU's price for a quantity is
decided; promotions (issue 4) will wrap it, never bypass it."""

from __future__ import annotations

from collections.abc import Iterable

from .models import PriceTier, Sku


def unit_price_fen(sku: Sku, quantity: int, tiers: Iterable[PriceTier] | None = None) -> int:
    """The tier with the largest ``min_quantity`` not above ``quantity``, else the list price."""
    best = sku.price_fen
    best_min = 0
    for tier in tiers if tiers is not None else sku.tiers.all():
        if best_min < tier.min_quantity <= quantity:
            best, best_min = tier.unit_price_fen, tier.min_quantity
    return best
