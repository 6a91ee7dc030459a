"""Bringing group messages in: files of records (JSON lines or CSV) → ``Message`` rows.

Two record formats, told apart line by line:

- **WeCom chat archive** (企业微信会话内容存档, a decrypted record): ``msgid``, ``action``,
  ``from``, ``roomid``, ``msgtime`` (ms), ``msgtype`` and the body under the type's own key
  (``text.content``, ``link.title`` / ``link_url``, ``redpacket.wish``, ``image.md5sum`` …).
  Records without a ``roomid`` are one-to-one chats, not group messages: skipped, counted.
- **Generic** (JSONL or CSV columns): ``msgid``; ``chat_id`` (the WeCom group id) or
  ``group_id`` (ours); ``sender`` (a WeCom userid / external_userid, optional); ``time`` (ISO
  8601 with its offset, or epoch milliseconds); ``type`` (text, image, link, red_packet, system;
  default text); ``content``.

A record that cannot be read — bad JSON, no id, an unknown group, a time without an offset — is
reported with its line number and skipped; every other record is stored whole or not at all,
and once: ``(platform, msgid)`` is unique, so importing a file twice adds nothing. Rows go in by
batches (PostgreSQL: COPY into a staging table, then one ``INSERT … ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.db import connection, transaction

from shequn.core import timeutil
from shequn.groups.models import CustomerGroup
from shequn.members.queries import members_by_wecom_id
from shequn.org.models import OrgNode, Staff

from .models import Message, MessageType

BATCH = 5000
MAX_CONTENT = 4000  # characters kept of one message
WECOM_TYPES = {
    "text": MessageType.TEXT,
    "image": MessageType.IMAGE,
    "link": MessageType.LINK,
    "redpacket": MessageType.RED_PACKET,
    "external_redpacket": MessageType.RED_PACKET,
    "revoke": MessageType.SYSTEM,
}


@dataclass(frozen=True)
class Incoming:
    """One record as read, its group and sender not yet looked up."""

    line: int
    platform: str
    msg_id: str
    chat_id: str
    group_id: int | None
    sender: str
    sent_at: datetime
    msg_type: str
    content: str


@dataclass(frozen=True)
class BadRecord:
    line: int
    reason: str


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    not_group: int = 0  # one-to-one chats in an archive: not ours to read
    bad: list[BadRecord] = field(default_factory=list)

    @property
    def bad_count(self) -> int:
        return len(self.bad)


MAX_ID = 2**63 - 1  # a larger group id is none of ours (and overflows SQLite's integers)


class _Bad(ValueError):
    pass


class _NotGroup(ValueError):
    pass


# --- reading ------------------------------------------------------------------------------------
def _text(value: Any, what: str, limit: int = 128) -> str:
    if not isinstance(value, str | int) or not str(value).strip():
        raise _Bad(f"缺少{what}")
    text = str(value).strip()
    if len(text) > limit:
        raise _Bad(f"{what}过长")
    return text


def _time(value: Any) -> datetime:
    if isinstance(value, int | float) or (
        isinstance(value, str) and value.isascii() and value.isdecimal()
    ):
        millis = int(value)
        if not 946_684_800_000 <= millis <= 4_102_444_800_000:  # 2000 … 2100
            raise _Bad("时间戳(毫秒)超出范围")
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    if not isinstance(value, str):
        raise _Bad("缺少时间")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(f"时间格式不对: {value[:40]}") from None
    if moment.tzinfo is None:
        raise _Bad("时间须带时区, 如 2026-11-24T09:30:00+08:00")
    return moment


def _wecom(line: int, record: dict[str, Any]) -> Incoming:
    """A decrypted WeCom chat-archive record."""
    msg_id = _text(record.get("msgid"), "msgid")
    if record.get("action") == "switch" or not record.get("roomid"):
        raise _NotGroup
    kind = str(record.get("msgtype") or "")
    raw_body = record.get(kind)
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    if kind == "text":
        content = str(body.get("content", ""))
    elif kind == "link":
        content = " ".join(str(body.get(k, "")) for k in ("title", "description", "link_url"))
    elif kind in ("redpacket", "external_redpacket"):
        content = str(body.get("wish", ""))
    elif kind == "image":
        content = str(body.get("md5sum", ""))
    else:
        content = ""
    if record.get("action") == "recall":
        kind, content = "revoke", ""
    return Incoming(
        line=line,
        platform="wecom",
        msg_id=msg_id,
        chat_id=_text(record.get("roomid"), "roomid"),
        group_id=None,
        sender=str(record.get("from") or "")[:64],
        sent_at=_time(record.get("msgtime")),
        msg_type=WECOM_TYPES.get(kind, MessageType.OTHER),
        content=content.strip()[:MAX_CONTENT],
    )


def _generic(line: int, record: dict[str, Any], platform: str) -> Incoming:
    chat_id = str(record.get("chat_id") or "").strip()
    raw_group = record.get("group_id")
    group_id = None
    if raw_group not in (None, ""):
        digits = str(raw_group)
        if not (digits.isascii() and digits.isdecimal()) or int(digits) > MAX_ID:
            raise _Bad("group_id 须为整数")
        group_id = int(digits)
    if not chat_id and group_id is None:
        raise _Bad("缺少 chat_id 或 group_id")
    kind = str(record.get("type") or "text").strip()
    if kind not in MessageType.values:
        raise _Bad(f"未知的消息类型: {kind[:20]}")
    content = record.get("content")
    if content is not None and not isinstance(content, str):
        raise _Bad("content 须为文本")
    return Incoming(
        line=line,
        platform=platform,
        msg_id=_text(record.get("msgid"), "msgid"),
        chat_id=chat_id[:64],
        group_id=group_id,
        sender=str(record.get("sender") or "").strip()[:64],
        sent_at=_time(record.get("time")),
        msg_type=kind,
        content=(content or "").strip()[:MAX_CONTENT],
    )


def _storable(incoming: Incoming) -> Incoming:
    """What a database can hold: PostgreSQL refuses NUL, and a lone surrogate is no UTF-8."""
    for text in (incoming.msg_id, incoming.chat_id, incoming.sender, incoming.content):
        if "\x00" in text:
            raise _Bad("含有不允许的字符 (NUL)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad("含有无法编码的字符") from None
    return incoming


def generic_record(line: int, record: dict[str, Any], platform: str) -> Incoming:
    """One generic record (file row or webhook item), ready to store, or ``_Bad``."""
    return _storable(_generic(line, record, platform))


Record = Incoming | BadRecord | None  # None: a one-to-one chat, skipped


def read_jsonl(stream: IO[str], platform: str = "import") -> Iterator[Record]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise _Bad("每行须为一个 JSON 对象")
            if "action" in record or "msgtime" in record or "roomid" in record:
                yield _storable(_wecom(number, record))
            else:
                yield generic_record(number, record, platform)
        except json.JSONDecodeError as exc:
            yield BadRecord(number, f"不是合法的 JSON ({exc.msg})")
        except _Bad as bad:
            yield BadRecord(number, str(bad))
        except _NotGroup:
            yield None


def read_csv(stream: IO[str], platform: str = "import") -> Iterator[Record]:
    reader = csv.DictReader(stream)
    missing = {"msgid", "time"} - set(reader.fieldnames or [])
    if missing:
        yield BadRecord(1, f"表头缺少: {', '.join(sorted(missing))}")
        return
    for row in reader:
        try:
            yield generic_record(reader.line_num, row, platform)
        except _Bad as bad:
            yield BadRecord(reader.line_num, str(bad))


# --- storing ------------------------------------------------------------------------------------
def import_messages(
    chain: OrgNode,
    records: Iterable[Record],
    *,
    batch: int = BATCH,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Store every readable record of the chain's groups; report the rest by line."""
    report = ImportReport()
    pending: list[Incoming] = []
    for record in records:
        report.read += 1
        if record is None:
            report.not_group += 1
        elif isinstance(record, BadRecord):
            report.bad.append(record)
        else:
            pending.append(record)
        if len(pending) >= batch:
            store_batch(chain, pending, report)
            pending = []
            if progress is not None:
                progress(report)
    if pending:
        store_batch(chain, pending, report)
    if progress is not None:
        progress(report)
    return report


def store_batch(chain: OrgNode, batch: list[Incoming], report: ImportReport) -> None:
    """Look up the batch's groups and senders and store what is new (counted in ``report``)."""
    groups_by_chat = dict(
        CustomerGroup.objects.filter(
            store__path__startswith=chain.path,
            external_chat_id__in={r.chat_id for r in batch if r.chat_id},
        ).values_list("external_chat_id", "id")
    )
    our_groups = set(
        CustomerGroup.objects.filter(
            store__path__startswith=chain.path, pk__in={r.group_id for r in batch if r.group_id}
        ).values_list("id", flat=True)
    )
    senders = {r.sender for r in batch if r.sender}
    members = members_by_wecom_id(chain.pk, senders)
    staff = dict(
        Staff.objects.filter(
            node__path__startswith=chain.path, wecom_userid__in=senders
        ).values_list("wecom_userid", "user_id")
    )
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    now = timeutil.now()
    for r in batch:
        group = r.group_id if r.group_id in our_groups else groups_by_chat.get(r.chat_id)
        if group is None:
            report.bad.append(BadRecord(r.line, f"本连锁没有这个群: {r.chat_id or r.group_id}"))
            continue
        key = (r.platform, r.msg_id)
        if key in rows:  # the same message twice in one file
            report.duplicates += 1
            continue
        rows[key] = (
            chain.pk,
            group,
            r.platform,
            r.msg_id,
            members.get(r.sender),
            staff.get(r.sender),
            r.sender,
            r.sent_at,
            r.msg_type,
            r.content,
            now,
        )
    inserted = store_rows(list(rows.values()))
    report.imported += inserted
    report.duplicates += len(rows) - inserted


COLUMNS = (
    "chain_id",
    "group_id",
    "platform",
    "platform_msg_id",
    "sender_member_id",
    "sender_staff_id",
    "sender_ref",
    "sent_at",
    "msg_type",
    "content",
    "created_at",
)


def store_rows(rows: list[tuple[Any, ...]]) -> int:
    """Insert rows (in ``COLUMNS`` order) that are not there yet; returns how many were new."""
    if not rows:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _store_postgres(rows)
        existing = set(
            Message.objects.filter(
                platform__in={row[2] for row in rows},
                platform_msg_id__in=[row[3] for row in rows],
            ).values_list("platform", "platform_msg_id")
        )
        fresh = [row for row in rows if (row[2], row[3]) not in existing]
        Message.objects.bulk_create(
            (Message(**dict(zip(COLUMNS, row, strict=True)), label="") for row in fresh),
            batch_size=500,
            ignore_conflicts=True,
        )
        return len(fresh)


def _store_postgres(rows: list[tuple[Any, ...]]) -> int:
    columns = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS demand_incoming AS"  # noqa: S608 - our own names
            f" SELECT {columns} FROM demand_message WITH NO DATA"
        )
        cursor.execute("TRUNCATE demand_incoming")
        raw = cursor.cursor  # psycopg's own cursor: COPY
        with raw.copy(f"COPY demand_incoming ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO demand_message ({columns}, label)"  # noqa: S608
            f" SELECT {columns}, '' FROM demand_incoming"
            " ON CONFLICT (platform, platform_msg_id) DO NOTHING"
        )
        return int(cursor.rowcount)


def open_records(path: str, stream: IO[str]) -> Iterator[Record]:
    """The reader for a file by its name: .csv, else JSON lines."""
    if path.lower().endswith(".csv"):
        return read_csv(stream)
    return read_jsonl(stream)
