"""Celery tasks: thin, idempotent interfaces to actions (safe to run twice, or concurrently)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="shequn.orders.tasks.submit_refund_task", max_retries=5, default_retry_delay=30)
def submit_refund_task(refund_id: int) -> str:
    """After commit: send the refund to the gateway (the refund sweep retries what fails)."""
    from .actions import submit_refund

    return submit_refund(refund_id)
