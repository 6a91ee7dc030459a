"""What more than one stage of an order needs, kept apart so the stages need not import each
other: the notification ledger (a payment or a refund result is applied once per notification
id), and giving a closing order's stock and promotion units back (a close, a full refund) or
handing its stock over (a pickup)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import IntegrityError, transaction

from shequn.core.errors import RuleViolation
from shequn.demand.preorders import holds_stock, release_preorder
from shequn.promotions.coupons import release_discounts
from shequn.promotions.flash import release_flash
from shequn.promotions.groupbuy import release_group_buy

from ..models import Order, OrderLine, PaymentNotification

logger = logging.getLogger("shequn.orders")


class PaymentMismatch(RuleViolation):
    """A verified notification that does not match our order: refuse it, change nothing."""

    default_code = "payment_mismatch"


def _claim_notification(
    provider: str, notification_id: str, event_type: str, **fields: str
) -> bool:
    """Record a notification id inside the caller's transaction; False if it was seen before.
    Concurrent duplicates wait on the unique index and then see the first one's row."""
    try:
        with transaction.atomic():
            PaymentNotification.objects.create(
                provider=provider,
                notification_id=notification_id,
                event_type=event_type,
                outcome="processing",
                **fields,
            )
    except IntegrityError:
        return False
    return True


def _finish_notification(provider: str, notification_id: str, **fields: str) -> None:
    PaymentNotification.objects.filter(provider=provider, notification_id=notification_id).update(
        **fields
    )


def _release_promotions(order: Order, lines: Sequence[OrderLine], *, unpaid: bool) -> None:
    """Give a closing order's promotion units back: flash lines to the quota and the member's
    limit, a group-buy's units to the member's limit (and an unpaid seat request is dropped);
    an unpaid order's coupon and instant discount (a refund keeps them spent)."""
    release_group_buy(order, unpaid=unpaid)
    release_preorder(order, unpaid=unpaid)
    if unpaid:
        release_discounts(order)
    for line in lines:
        if line.flash_quota_id is not None and not release_flash(
            quota_id=line.flash_quota_id, member_id=order.member_id, quantity=line.quantity
        ):
            raise RuntimeError(f"flash quota missing for order {order.number} line {line.pk}")


def _apply_to_lines(order: Order, stock_update: Callable[..., bool]) -> list[OrderLine]:
    """Run one guarded stock update (release, hand over) for every line, in SKU order.
    If one finds nothing to act on, the allocations no longer add up: refuse to guess.
    A pre-order whose goods have not reached the store holds nothing yet: nothing to do."""
    lines = list(order.lines.order_by("sku_id"))
    if not holds_stock(order):
        return lines
    for line in lines:
        if not stock_update(store_id=order.store_id, sku_id=line.sku_id, quantity=line.quantity):
            raise RuntimeError(f"allocation missing for order {order.number} sku {line.sku_id}")
    return lines
