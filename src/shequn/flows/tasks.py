"""Celery tasks of the flows: thin and idempotent (safe to run twice, or concurrently)."""

from __future__ import annotations

from celery import shared_task

from .sweeps import run_due_sweeps


@shared_task(name="shequn.flows.tasks.run_due_sweeps_task")
def run_due_sweeps_task() -> dict[str, int]:
    """Beat runs this every 30 s on the scale path; each sweep acts only on what is still due."""
    return run_due_sweeps()
