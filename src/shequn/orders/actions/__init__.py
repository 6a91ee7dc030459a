"""Order actions: what happens to an order, from placing it to its last refund, one module per
stage so each can be read on its own.

- ``placing``: ``place_order`` and ``place_preorder_order`` — the request's checks, prices on the
  server, promotions, and the stock reservation (the hot path).
- ``payments``: a payment result applied exactly once (notification or query), opening a payment
  at the gateway, and closing unpaid orders (cancel, and the sweep at the payment deadline).
- ``pickup``: the pickup code drawn at payment, and the handover at the till that uses it once.
- ``refunds``: refund requests, the outbox that submits them to the gateway (and its sweep), and
  the refund results the platform reports.
- ``_common``: what several stages need: the notification ledger, and releasing or handing over
  an order's stock and promotion units.

Callers import from ``shequn.orders.actions``, which re-exports every public name. A test that
replaces a name must patch the submodule that looks it up (``actions.pickup._new_pickup_code``),
not this package.
"""

from ._common import PaymentMismatch
from .payments import (
    GATEWAY_GRACE,
    PaymentReport,
    PaymentStart,
    bounded_id,
    cancel_unpaid_order,
    reconcile_payment,
    record_payment,
    start_payment,
    sweep_expired_orders,
)
from .pickup import PICKUP_CODE, PICKUP_CODE_TRIES, verify_pickup
from .placing import (
    IDEMPOTENCY_KEY,
    MAX_LINES,
    MAX_ORDER_TOTAL_FEN,
    MAX_QUANTITY,
    PAYMENT_WINDOW,
    LineRequest,
    OutOfStock,
    PlacedOrder,
    key_reused,
    place_order,
    place_preorder_order,
)
from .refunds import (
    MAX_REFUND_ATTEMPTS,
    REFUND_EVENTS,
    REFUND_RESUBMIT_AFTER,
    RefundReport,
    record_refund_result,
    refund_whole_order,
    request_member_refund,
    request_refund,
    submit_refund,
    sweep_unsubmitted_refunds,
)

__all__ = [
    "GATEWAY_GRACE",
    "IDEMPOTENCY_KEY",
    "MAX_LINES",
    "MAX_ORDER_TOTAL_FEN",
    "MAX_QUANTITY",
    "MAX_REFUND_ATTEMPTS",
    "PAYMENT_WINDOW",
    "PICKUP_CODE",
    "PICKUP_CODE_TRIES",
    "REFUND_EVENTS",
    "REFUND_RESUBMIT_AFTER",
    "LineRequest",
    "OutOfStock",
    "PaymentMismatch",
    "PaymentReport",
    "PaymentStart",
    "PlacedOrder",
    "RefundReport",
    "bounded_id",
    "cancel_unpaid_order",
    "key_reused",
    "place_order",
    "place_preorder_order",
    "reconcile_payment",
    "record_payment",
    "record_refund_result",
    "refund_whole_order",
    "request_member_refund",
    "request_refund",
    "start_payment",
    "submit_refund",
    "sweep_expired_orders",
    "sweep_unsubmitted_refunds",
    "verify_pickup",
]
