"""Text messages to members' phones (login codes). The backends here send nothing: ``log`` and
``display`` write the message to the log and keep the last ones in memory, which is what the
demo (``display`` shows the code on the login page) and the tests read. A deployment with an
SMS provider adds a backend here; the rest of the code only calls ``send_sms``."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from shequn.core import timeutil

logger = logging.getLogger("shequn.sms")


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str
    sent_at: str


OUTBOX: deque[SmsMessage] = deque(maxlen=200)
_lock = threading.Lock()


def send_sms(phone: str, text: str) -> None:
    backend = settings.SHEQUN_SMS_BACKEND
    if backend not in ("log", "display"):
        raise ImproperlyConfigured(f"unknown SHEQUN_SMS_BACKEND: {backend}")
    with _lock:
        OUTBOX.append(SmsMessage(phone, text, timeutil.now().isoformat()))
    logger.info("sms to %s: %s", phone[:-4] + "****", text)


def shows_codes_on_page() -> bool:
    """True only where no SMS is really sent (the demo): the login page shows the code."""
    return bool(settings.SHEQUN_SMS_BACKEND == "display")


def last_text_to(phone: str) -> str | None:
    with _lock:
        for message in reversed(OUTBOX):
            if message.phone == phone:
                return message.text
    return None
