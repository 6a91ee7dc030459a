"""Complaints as alerts, and how fast staff answer them (seed 002: groups are public, so a
complaint must reach HQ at once and be answered fast).

- ``raise_alerts``: every message just labelled a complaint (from a member) becomes one
  ``Complaint`` — once per message — stamped with the moment it reached the feed. The classify
  sweep runs every 30 s, so a complaint is an alert within a minute of arriving.
- ``note_staff_replies``: a staff message in a group answers every complaint there that was
  made before it and not yet answered: the response time is from the complaint to that reply.
- ``sla_by_store``: per store, how many complaints, how many answered within the target, the
  median and slowest response, and how many are still waiting past it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet

from shequn.core import timeutil

from .models import Complaint, Message, MessageLabel

SLA = timedelta(minutes=30)  # answer a complaint in a group within half an hour


def raise_alerts(message_ids: Iterable[int], now: datetime | None = None) -> int:
    now = now or timeutil.now()
    fresh = list(
        Message.objects.filter(
            pk__in=list(message_ids), label=MessageLabel.COMPLAINT, sender_member__isnull=False
        ).values_list("pk", "group_id", "sender_member_id", "sent_at")
    )
    Complaint.objects.bulk_create(
        (
            Complaint(message_id=pk, group_id=group, member_id=member, sent_at=sent, alerted_at=now)
            for pk, group, member, sent in fresh
        ),
        ignore_conflicts=True,  # one complaint per message, whichever sweep gets there first
    )
    for pk, group, _, sent in fresh:  # a reply imported before its complaint still counts
        reply = (
            Message.objects.filter(group_id=group, sender_staff__isnull=False, sent_at__gte=sent)
            .order_by("sent_at", "id")
            .values_list("sent_at", "sender_staff_id")
            .first()
        )
        if reply is not None:
            Complaint.objects.filter(message_id=pk, first_response_at__isnull=True).update(
                first_response_at=reply[0], responder_id=reply[1]
            )
    return len(fresh)


def note_staff_replies(message_ids: Iterable[int]) -> int:
    """Staff messages among ``message_ids`` answer the open complaints made before them."""
    answered = 0
    replies = (
        Message.objects.filter(pk__in=list(message_ids), sender_staff__isnull=False)
        .order_by("sent_at", "id")
        .values_list("group_id", "sent_at", "sender_staff_id")
    )
    for group, sent_at, staff in replies:
        answered += Complaint.objects.filter(
            group_id=group, first_response_at__isnull=True, sent_at__lte=sent_at
        ).update(first_response_at=sent_at, responder_id=staff)
    return answered


@dataclass(frozen=True)
class StoreSla:
    store: str
    complaints: int
    answered: int
    within_sla: int
    median_minutes: float | None
    slowest_minutes: float | None
    waiting_past_sla: int

    @property
    def within_share(self) -> float:
        return self.within_sla / self.complaints if self.complaints else 1.0


def sla_by_store(complaints: QuerySet[Complaint], now: datetime | None = None) -> list[StoreSla]:
    """``complaints`` (already scoped and filtered to a period) summed up per store."""
    now = now or timeutil.now()
    per_store: dict[str, list[Complaint]] = {}
    for complaint in complaints.select_related("group__store"):
        per_store.setdefault(complaint.group.store.name, []).append(complaint)
    rows = []
    for store, items in sorted(per_store.items()):
        times = [c.response_seconds / 60 for c in items if c.response_seconds is not None]
        rows.append(
            StoreSla(
                store=store,
                complaints=len(items),
                answered=len(times),
                within_sla=sum(1 for t in times if t <= SLA.total_seconds() / 60),
                median_minutes=round(statistics.median(times), 1) if times else None,
                slowest_minutes=round(max(times), 1) if times else None,
                waiting_past_sla=sum(
                    1 for c in items if c.first_response_at is None and now - c.sent_at > SLA
                ),
            )
        )
    return rows
