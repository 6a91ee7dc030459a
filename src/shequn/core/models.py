"""Audit log and idempotency records: append-only facts shared by every app."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what, when, to what, from where. Rows are never updated or deleted.

    A database trigger (see migration 0002) refuses UPDATE and DELETE, even in raw SQL.
    ``scope_path`` is the org path of the node the event belongs to, so managers can read the
    events of their own subtree through the same scoping as everything else.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    scope_path = models.CharField(max_length=255, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    channel = models.CharField(max_length=16, default="system")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = "审计日志"
        verbose_name_plural = "审计日志"
        # Every order writes an event, so each index here is paid per order. ``action`` is only
        # compared whole: declared here rather than with ``db_index``, it gets no LIKE twin on
        # PostgreSQL (``scope_path`` keeps both: scopes are read by prefix). Actors are indexed
        # only where there is one (staff; a member's own actions have none).
        indexes = [
            models.Index(fields=["action"], name="audit_action_idx"),
            models.Index(
                fields=["actor"], condition=models.Q(actor__isnull=False), name="audit_actor_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("audit events are append-only")
        super().save(*args, **kwargs)

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(scope_path__startswith=path)


class IdempotencyRecord(models.Model):
    """The stored response of the first API write with a given (principal, key).

    Same key + same request → the stored response again; same key + another request → 422.
    The row is inserted in the same transaction as the write it guards, so a concurrent
    duplicate waits on the unique index and then replays the committed response.
    """

    principal = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_principal_key")
        ]

    def __str__(self) -> str:
        return f"{self.principal}:{self.key}"


class WebhookNonce(models.Model):
    """A nonce a signed webhook has accepted, kept while its timestamp could still pass the window.

    The unique constraint is the replay check: a second delivery with the same nonce fails to
    insert, also when two race. ``source`` names the webhook, so each has its own nonces.
    """

    source = models.CharField(max_length=32)
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "nonce"], name="webhook_nonce_once")
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.nonce}"


class ThrottleCounter(models.Model):
    """How often one thing happened in its current window (texts to a phone, from an address,
    in the whole deployment). Moved only by ``core.throttle.take``'s guarded UPDATE, so parallel
    requests can never both pass a limit that only one of them fits under."""

    key = models.CharField(max_length=200, unique=True)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "频率计数"
        verbose_name_plural = "频率计数"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
