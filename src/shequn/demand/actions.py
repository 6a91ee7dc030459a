"""Demand actions: label what came in (the classify sweep), then act on it: ads open
moderation cases, complaints become alerts, staff messages answer the complaints before them,
needs and complaints join their topics on the demand board."""

from __future__ import annotations

import time

from django.db import transaction

from .classifier import classify
from .complaints import note_staff_replies, raise_alerts
from .models import Message, MessageLabel, MessageType
from .moderation import open_cases
from .topics import DEMAND_LABELS, gather

READABLE = (MessageType.TEXT, MessageType.LINK)


CHUNK = 2000
BUDGET_S = 10.0  # one sweep labels for at most this long, then lets the others run


def classify_pending(*, batch: int = CHUNK, pause_s: float = 0.0) -> int:
    """Label unlabelled messages, oldest first, in chunks of at least 2,000, for up to 10 s
    (the sweep runs every 30 s, so a new complaint is labelled well within a minute)."""
    deadline = time.monotonic() + BUDGET_S
    done = 0
    while time.monotonic() < deadline:
        labelled = _classify_chunk(max(batch, CHUNK))
        done += labelled
        if labelled == 0:
            break
        if pause_s:
            time.sleep(pause_s)
    return done


def _classify_chunk(batch: int) -> int:
    """Label up to ``batch`` unlabelled messages, oldest first. Members' text and links go to
    the classifier; staff messages and what has no text to read (images, red packets, system
    notices) are chit-chat without a score — the store's own notices are not demand, and a
    staff member's shop link is not an ad. Idempotent: only rows still unlabelled are set."""
    rows = list(
        Message.objects.filter(label="")
        .order_by("id")
        .values_list("id", "msg_type", "content", "sender_staff_id")[:batch]
    )
    if not rows:
        return 0
    readable = [
        (pk, content)
        for pk, kind, content, staff in rows
        if kind in READABLE and staff is None and content
    ]
    labels: dict[int, tuple[str, float | None]] = {
        pk: (MessageLabel.CHITCHAT, None) for pk, *_ in rows
    }
    for (pk, _), result in zip(
        readable, classify([content for _, content in readable]), strict=True
    ):
        labels[pk] = (result.label, result.score)
    updates = []
    for pk, (label, score) in labels.items():
        updates.append(Message(pk=pk, label=label, label_score=score))
    # The labels and what follows from them commit together: a sweep killed half-way leaves
    # the chunk unlabelled, and the next one does all of it (each step is once per message).
    with transaction.atomic():
        Message.objects.bulk_update(updates, ["label", "label_score"], batch_size=500)
        open_cases(pk for pk, (label, _) in labels.items() if label == MessageLabel.AD)
        raise_alerts(pk for pk, (label, _) in labels.items() if label == MessageLabel.COMPLAINT)
        note_staff_replies(labels)
        gather(pk for pk, (label, _) in labels.items() if label in DEMAND_LABELS)
    return len(updates)
