"""The Celery app (scale path). Settings come from Django's, prefixed CELERY_.

Embedded default (no ``CELERY_BROKER_URL``): tasks run eagerly, in-process, and `shequn serve`
sweeps deadlines on a timer thread. Scale path: ``CELERY_BROKER_URL=redis://…``, then
``celery -A shequn worker`` and ``celery -A shequn beat`` (beat runs the same sweeps).
Tasks are thin and idempotent: each re-reads state and calls one action.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn.settings.dev")

app = Celery("shequn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["shequn.orders", "shequn.flows"])
