"""The member's cart: per store, in the session ({store_id: {sku_id: quantity}}). It holds
wishes only; prices and stock are decided by ``place_order`` at checkout."""

from __future__ import annotations

from django.http import HttpRequest

from shequn.core.errors import InvalidInput
from shequn.orders.actions import MAX_LINES, MAX_QUANTITY

CART_KEY = "shop_cart"


def _all(request: HttpRequest) -> dict[str, dict[str, int]]:
    raw = request.session.get(CART_KEY)
    return raw if isinstance(raw, dict) else {}


def cart_lines(request: HttpRequest, store_id: int) -> dict[int, int]:
    return {int(sku): int(qty) for sku, qty in _all(request).get(str(store_id), {}).items()}


def parse_id(raw: str | None, message: str = "请选择商品规格", code: str = "invalid_sku") -> int:
    """A row id from a form field; anything else is the member's typo, not a server error."""
    text = (raw or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise InvalidInput(message, code=code)
    return int(text)


def parse_quantity(raw: str) -> int:
    text = (raw or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise InvalidInput("数量须为正整数", code="invalid_quantity")
    quantity = int(text)
    if not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"数量须在 1-{MAX_QUANTITY} 之间", code="invalid_quantity")
    return quantity


def set_quantity(
    request: HttpRequest, store_id: int, sku_id: int, quantity: int, *, add: bool
) -> None:
    """Add to (or, with ``add=False``, set) a line; quantity 0 removes it."""
    carts = _all(request)
    lines = carts.setdefault(str(store_id), {})
    new = (lines.get(str(sku_id), 0) if add else 0) + quantity
    if new <= 0:
        lines.pop(str(sku_id), None)
    else:
        if str(sku_id) not in lines and len(lines) >= MAX_LINES:
            raise InvalidInput(f"购物车最多 {MAX_LINES} 种商品", code="too_many_lines")
        lines[str(sku_id)] = min(new, MAX_QUANTITY)
    request.session[CART_KEY] = carts


def clear(request: HttpRequest, store_id: int) -> None:
    carts = _all(request)
    carts.pop(str(store_id), None)
    request.session[CART_KEY] = carts
