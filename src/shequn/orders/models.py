"""Orders and their lines. Prices are copied onto the lines at placement (the catalog may change
later; what the member agreed to pay may not). The payment deadline lives in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.catalog.models import Sku
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member
from shequn.org.models import OrgNode


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "待支付"
    PAID = "paid", "已支付"
    FULFILLED = "fulfilled", "已完成"
    CLOSED = "closed", "已关闭"
    REFUNDED = "refunded", "已退款"


class OrderChannel(models.TextChoices):
    """Where the order came from (步步高's order sources)."""

    OFFICIAL_ACCOUNT_POST = "official_account_post", "公众号推文"
    GROUND_PROMOTION = "ground_promotion", "地推"
    GROUP_SHARE = "group_share", "社群转发"
    MOMENTS_SHARE = "moments_share", "朋友圈转发"
    SMS = "sms", "短信推送"
    SUBSCRIPTION_NOTICE = "subscription_notice", "订阅号服务通知"
    STORE_MATERIAL = "store_material", "门店物料"
    ORGANIC = "organic", "自然流量"


class Fulfilment(models.TextChoices):
    PICKUP = "pickup", "门店自提"
    DELIVERY = "delivery", "到家配送"


class Order(models.Model):
    # Indexes: every one is written by every order, and a flash sale writes orders as fast as
    # the machine can. So none twice (``number`` is unique by a constraint, which unlike
    # ``unique=True`` adds no LIKE index that nothing uses; ``member`` is served by the
    # (member, idempotency key) constraint), and the optional links are indexed only where set.
    number = models.CharField("订单号", max_length=24)
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="orders")
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    status = models.CharField(
        "状态", max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    fulfilment = models.CharField(
        "履约方式", max_length=10, choices=Fulfilment.choices, default=Fulfilment.PICKUP
    )
    delivery_address = models.CharField("配送地址", max_length=200, blank=True)
    subtotal_fen = models.PositiveIntegerField("商品金额(分)")
    total_fen = models.PositiveIntegerField("应付金额(分)")
    # Paid at the store on pickup, not online: a pre-order pays its deposit as ``total_fen``
    # and the rest of the price here (0 for every other order).
    balance_due_fen = models.PositiveIntegerField("到店尾款(分)", default=0, db_default=0)
    # Source attribution: group, sharer, content piece and channel.
    channel = models.CharField(
        "来源渠道", max_length=24, choices=OrderChannel.choices, default=OrderChannel.ORGANIC
    )
    source_group = models.ForeignKey(
        CustomerGroup,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
    )
    sharer = models.ForeignKey(
        Member,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="shared_orders",
        db_index=False,
    )
    content_ref = models.CharField("内容素材", max_length=64, blank=True)
    # Idempotency: one order per (member, key); the fingerprint detects a reused key.
    idempotency_key = models.CharField(max_length=64)
    request_fingerprint = models.CharField(max_length=64)
    payment_deadline = models.DateTimeField("支付截止")
    # Set (and committed) before the first prepay call: from then on the gateway may hold a
    # payment for this order, so it is queried and closed there before we close it here.
    payment_started_at = models.DateTimeField(null=True, blank=True)
    payment_channel = models.CharField(max_length=8, blank=True)  # "jsapi" or "h5", once set
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=32, blank=True)
    # Store pickup (自提): the code is issued at payment and can be used once (核销).
    pickup_code = models.CharField("提货码", max_length=8, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    fulfilled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "订单"
        verbose_name_plural = "订单"
        constraints = [
            models.UniqueConstraint(fields=["number"], name="order_number_unique"),
            models.UniqueConstraint(
                fields=["member", "idempotency_key"], name="one_order_per_member_key"
            ),
            models.CheckConstraint(
                condition=models.Q(total_fen__lte=models.F("subtotal_fen")),
                name="order_total_within_subtotal",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total_fen__lte=models.F("subtotal_fen") - models.F("balance_due_fen")
                ),
                name="order_balance_within_subtotal",
            ),
            models.UniqueConstraint(
                fields=["store", "pickup_code"],
                condition=~models.Q(pickup_code=""),
                name="pickup_code_unique_per_store",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "payment_deadline"], name="order_due_idx"),
            *(
                models.Index(
                    fields=[link], condition=models.Q(**{f"{link}__isnull": False}), name=name
                )
                for link, name in (
                    ("source_group", "order_source_group_idx"),
                    ("sharer", "order_sharer_idx"),
                    ("fulfilled_by", "order_fulfilled_by_idx"),
                )
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(store__path__startswith=path)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    product_name = models.CharField(max_length=100)
    sku_spec = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price_fen = models.PositiveIntegerField()
    line_total_fen = models.PositiveIntegerField()
    # The flash-sale quota this line took its units from, given back if the order closes unpaid
    # or is refunded before pickup.
    flash_quota = models.ForeignKey(
        "promotions.FlashSaleQuota",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    line_total_fen=models.F("unit_price_fen") * models.F("quantity")
                ),
                name="line_total_is_price_times_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_name} ×{self.quantity}"


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "支付成功"


class Payment(models.Model):
    """A confirmed payment of an order. ``refund_required`` marks money we must give back: a
    late success for a closed order, or a second payment of a paid one — never a re-open."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=16, default="wechatpay")
    out_trade_no = models.CharField("商户订单号", max_length=32)
    transaction_id = models.CharField("支付平台单号", max_length=64)
    amount_fen = models.PositiveIntegerField("金额(分)")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    payer_openid = models.CharField(max_length=128, blank=True)
    succeeded_at = models.DateTimeField()
    refund_required = models.BooleanField("需退款", default=False)
    # Σ of this payment's refunds that are requested or done (closed refunds give it back).
    refunded_fen = models.PositiveIntegerField("已退/退款中(分)", default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "支付记录"
        verbose_name_plural = "支付记录"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "transaction_id"], name="one_payment_per_transaction"
            ),
            models.CheckConstraint(
                condition=models.Q(refunded_fen__lte=models.F("amount_fen")),
                name="refunds_within_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.transaction_id}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(order__store__path__startswith=path)


class PaymentNotification(models.Model):
    """Every verified notification we acted on, by the platform's notification id (idempotency)."""

    provider = models.CharField(max_length=16, default="wechatpay")
    notification_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=32)
    out_trade_no = models.CharField(max_length=32, blank=True)
    transaction_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=24)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "notification_id"], name="one_row_per_notification"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} {self.outcome}"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "退款中"
    SUCCEEDED = "succeeded", "已退款"
    CLOSED = "closed", "退款关闭"
    ABNORMAL = "abnormal", "退款异常"  # not final: needs a person (WeChat REFUND.ABNORMAL)


class Refund(models.Model):
    """A refund is its own record, never an edit of the payment; partial or full."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField("退款单号", max_length=32, unique=True)
    amount_fen = models.PositiveIntegerField("退款金额(分)")
    reason = models.CharField("原因", max_length=100)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Outbox: the gateway call happens after commit; until it succeeds, a sweep retries it.
    submitted_at = models.DateTimeField(null=True, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "退款"
        verbose_name_plural = "退款"
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="refund_positive")
        ]

    def __str__(self) -> str:
        return f"{self.out_refund_no} {self.amount_fen}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(order__store__path__startswith=path)
