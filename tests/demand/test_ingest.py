"""Importing group messages: the WeCom chat-archive record format and the generic JSONL/CSV
columns; members and staff matched by their WeCom ids; one-to-one chats skipped; a record
delivered twice or a file imported twice stored once; bad records reported by line and
skipped, the rest stored whole; then the classify sweep labels members' messages."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.db.models import ProtectedError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shequn.demand.actions import classify_pending
from shequn.demand.ingest import BadRecord, import_messages, open_records, read_csv, read_jsonl
from shequn.demand.models import Message, MessageType
from shequn.groups.models import CustomerGroup
from shequn.members.models import ChannelIdentity, IdentityChannel
from shequn.org.models import Staff
from tests.conftest import Chain, build_chain, make_group
from tests.orders.test_sweeper_crash import database_url
from tests.referrals.test_commission_lifecycle import member

FIXTURES = Path(__file__).parent / "fixtures"
ROOM = "wrjc7bDwAASxc8tZvBErFE02BtPWyAAA"
MEMBER_ID = "wmErxtDgAA9AW32YyyuYRimKr7D1KWlw"


def wecom_world(chain: Chain) -> dict[str, Any]:
    group = make_group(chain.manager_a, chain.store_a)
    CustomerGroup.objects.filter(pk=group.pk).update(external_chat_id=ROOM)
    customer = member(chain, 50)
    ChannelIdentity.objects.create(
        chain=chain.hq,
        member=customer,
        channel=IdentityChannel.WECOM_EXTERNAL_USERID,
        value=MEMBER_ID,
    )
    Staff.objects.filter(pk=chain.operator_a.pk).update(wecom_userid="ZhangSan")
    return {"group": group, "member": customer}


@pytest.mark.django_db
def test_a_wecom_archive_is_imported_once_with_people_matched(chain: Chain) -> None:
    world = wecom_world(chain)
    path = FIXTURES / "wecom_archive.jsonl"
    with path.open(encoding="utf-8") as stream:
        report = import_messages(chain.hq, read_jsonl(stream))
    assert (report.read, report.imported, report.duplicates, report.not_group) == (13, 7, 1, 2)
    reasons = {b.line: b.reason for b in report.bad}
    assert sorted(reasons) == [6, 12, 13]
    assert reasons[6].startswith("不是合法的 JSON")
    assert reasons[12] == "本连锁没有这个群: wrSomeOtherChainsGroup00000000"
    assert reasons[13] == "缺少msgid"
    rows = {m.platform_msg_id: m for m in Message.objects.all()}
    first = rows["CAQQluDa4QUY0On2rYSAgAMgzPrShAE="]
    assert (first.group_id, first.sender_member_id, first.msg_type) == (
        world["group"].pk,
        world["member"].pk,
        MessageType.TEXT,
    )
    assert first.content == "要是有小包装的艾灸贴就好了"
    assert first.sent_at.timestamp() == 1764000000
    staff_reply = rows["CAQQ2fbb4QUY0On2rYSAgAMg4OGBtQE="]
    assert staff_reply.sender_staff_id == chain.operator_a.user_id
    kinds = {m.platform_msg_id[-1]: m.msg_type for m in rows.values()}
    assert kinds["1"] == MessageType.LINK
    assert "加我vx" in rows["CAQQ3abc4QUY0On2rYSAgAMg1"].content
    assert kinds["2"] == MessageType.RED_PACKET
    assert kinds["3"] == MessageType.IMAGE
    assert kinds["4"] == MessageType.SYSTEM  # a recall
    unknown = rows["CAQQ3abc4QUY0On2rYSAgAMg5"]
    assert (unknown.msg_type, unknown.sender_member_id, unknown.sender_ref) == (
        MessageType.OTHER,
        None,
        "wmUnknownCustomer0001",
    )

    with path.open(encoding="utf-8") as stream:
        again = import_messages(chain.hq, read_jsonl(stream))
    assert (again.imported, again.duplicates) == (0, 8)
    assert Message.objects.count() == 7


@pytest.mark.django_db
def test_generic_csv_bad_rows_are_named_good_rows_stored(chain: Chain) -> None:
    wecom_world(chain)
    with (FIXTURES / "generic.csv").open(encoding="utf-8", newline="") as stream:
        report = import_messages(chain.hq, read_csv(stream), batch=2)
    assert report.imported == 3
    assert [(b.line, b.reason) for b in report.bad] == [
        (4, "时间须带时区, 如 2026-11-24T09:30:00+08:00"),
        (5, "group_id 须为整数"),
        (6, "未知的消息类型: sticker"),
    ]
    assert set(Message.objects.values_list("platform_msg_id", flat=True)) == {"m-1", "m-2", "m-6"}


@pytest.mark.django_db
def test_the_classify_sweep_labels_members_messages_once(chain: Chain) -> None:
    wecom_world(chain)
    with (FIXTURES / "wecom_archive.jsonl").open(encoding="utf-8") as stream:
        import_messages(chain.hq, read_jsonl(stream))
    with (FIXTURES / "generic.csv").open(encoding="utf-8", newline="") as stream:
        import_messages(chain.hq, read_csv(stream))
    assert classify_pending() == 10
    assert classify_pending() == 0
    labels = dict(Message.objects.values_list("content", "label"))
    assert labels["要是有小包装的艾灸贴就好了"] == "need"
    assert labels["昨天买的草莓一半是烂的"] == "complaint"
    assert labels["鸡蛋很新鲜，下次还买"] == "praise"
    assert labels["兼职日结 加我vx https://t.cn/abc"] == "ad"
    staff = Message.objects.get(platform_msg_id="m-2")
    assert (staff.label, staff.label_score) == ("chitchat", None)  # the store's own reply


@pytest.mark.django_db(transaction=True)
def test_the_import_command_reports_bad_lines_and_exits_3() -> None:
    chain = build_chain()
    wecom_world(chain)
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env["DATABASE_URL"] = database_url()
    command = [sys.executable, "-m", "shequn.cli", "messages", "import"]
    done = subprocess.run(
        [*command, str(FIXTURES / "wecom_archive.jsonl"), "--chain", chain.hq.code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "第 6 行: 不是合法的 JSON" in done.stderr
    assert "新增 7 条, 重复 1 条, 单聊跳过 2 条, 无法读取 3 条" in done.stdout
    missing = subprocess.run(
        [*command, "/no/such/file.jsonl", "--chain", chain.hq.code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "shequn: 找不到文件: /no/such/file.jsonl"
    assert Message.objects.count() == 7


def test_records_no_database_can_hold_are_named_not_fatal() -> None:
    """NUL (PostgreSQL refuses it), a lone surrogate, a "digit" that is no number, an id past
    64 bits: each is one bad line, and the lines around them still read."""
    import io
    import json

    def line(**fields: Any) -> str:
        base = {"msgid": "m", "chat_id": "wr1", "time": "2026-11-20T09:00:00+08:00"}
        return json.dumps({**base, **fields})

    lines = [
        line(content="好\u0000"),
        line(content="\ud800"),
        line(group_id="²", chat_id=""),
        line(group_id=str(2**64), chat_id=""),
        line(time="１７６４０００００００００"),  # full-width digits
        line(msgid="ok", content="可以"),
    ]
    read = list(read_jsonl(io.StringIO("\n".join(lines))))
    assert [type(r).__name__ for r in read] == ["BadRecord"] * 5 + ["Incoming"]


def archive_lines(keys: list[str], room: str = ROOM, content: str = "想要小包装") -> list[str]:
    return [
        json.dumps(
            {
                "msgid": key,
                "action": "send",
                "from": MEMBER_ID,
                "roomid": room,
                "msgtime": 1_764_000_000_000 + n,
                "msgtype": "text",
                "text": {"content": content if key != "boom" else "boom"},
            },
            ensure_ascii=False,
        )
        for n, key in enumerate(keys)
    ]


def test_bytes_lines_bom_and_text_that_is_not_utf8() -> None:
    """The importer reads bytes (as `shequn messages import` does): a byte-order mark on the
    first line is no error, and a line that is not UTF-8 is one bad line, not the end."""
    good = archive_lines(["a", "b"])
    data = b"\xef\xbb\xbf" + good[0].encode() + b"\n" + b'{"msgid": "\xff"}\n' + good[1].encode()
    read = list(read_jsonl(io.BytesIO(data)))
    assert [type(r).__name__ for r in read] == ["Incoming", "BadRecord", "Incoming"]
    assert read[1] == BadRecord(2, "不是 UTF-8 编码的文本")
    text = list(read_jsonl(io.StringIO("\ufeff" + "\n".join(good))))  # a text stream reads alike
    assert text == [read[0], read[2]._replace(line=2)]
    assert read[0].sent_at == datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def test_a_csv_file_stays_open_and_a_row_that_is_not_utf8_is_one_bad_row() -> None:
    """`shequn messages import` reads a .csv through ``open_records`` and asks the file for its
    position after the last row (the progress bar): the reader must leave the caller's file open.
    A row with bytes that are not UTF-8 is one bad row, named by its line; the rest still read."""
    data = (
        "msgid,group_id,time,content\nc-1,7,2026-11-24T09:30:00+08:00,想要小包装\n".encode()
        + b"c-2,7,2026-11-24T09:31:00+08:00,\xff\xfe\n"
        + "c-3,7,2026-11-24T09:32:00+08:00,好\n".encode()
    )
    raw = io.BytesIO(data)
    read = list(open_records("messages.CSV", raw))
    assert not raw.closed
    assert raw.tell() == len(data)
    assert [type(r).__name__ for r in read] == ["Incoming", "BadRecord", "Incoming"]
    assert read[1] == BadRecord(3, "不是 UTF-8 编码的文本")


@pytest.mark.django_db(transaction=True)
def test_storing_threads_store_each_message_once_and_report_in_line_order() -> None:
    """Outside a transaction on PostgreSQL, batches are stored by two threads while the next is
    read (on SQLite, one after the other). Batches holding the same messages in opposite orders, stored side by side, neither
    deadlock nor store a message twice; unknown groups are reported in line order."""
    chain = build_chain()
    wecom_world(chain)
    forward = [f"k{n:04d}" for n in range(400)]
    lines = (
        archive_lines(forward)
        + archive_lines(forward[::-1])  # the same 400 messages again, last first
        + archive_lines(["x1", "x2"], room="wrNotOurs")
        + archive_lines(forward[:100])
    )
    report = import_messages(chain.hq, read_jsonl(io.StringIO("\n".join(lines))), batch=50)
    assert (report.read, report.imported, report.duplicates) == (902, 400, 500)
    assert [b.line for b in report.bad] == [801, 802]
    assert Message.objects.count() == 400
    assert not connection.in_atomic_block
    again = import_messages(chain.hq, read_jsonl(io.StringIO("\n".join(lines))), batch=50)
    assert (again.imported, again.duplicates) == (0, 900)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="storing threads: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_refuses_stops_the_import_and_reaches_the_caller() -> None:
    """A database error in a storing thread is raised to the caller; the batches before it stay
    stored, the refused batch is stored not at all, nothing after it is attempted."""
    chain = build_chain()
    wecom_world(chain)
    keys = [f"k{n:04d}" for n in range(300)]
    keys[120] = "boom"  # in the third batch of 50
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE demand_message ADD CONSTRAINT test_refuses_boom CHECK (content <> 'boom')"
        )
    try:
        with pytest.raises(IntegrityError, match="test_refuses_boom"):
            import_messages(
                chain.hq, read_jsonl(io.StringIO("\n".join(archive_lines(keys)))), batch=50
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE demand_message DROP CONSTRAINT test_refuses_boom")
    stored = set(Message.objects.values_list("platform_msg_id", flat=True))
    assert "boom" not in stored
    assert not stored & set(keys[100:150])  # the refused batch: none of it
    assert set(keys[:100]) <= stored  # the two before it: all of it


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="COPY: PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_two_imports_that_deadlock_each_store_what_is_new_and_nothing_twice() -> None:
    """Two files holding the same two messages in opposite orders, imported side by side: each
    batch COPYs straight into the table, holds one message and waits for the other's (a test
    trigger pauses each before its second row), and PostgreSQL ends the deadlock by failing one
    of them. That one falls back to inserting only what is new: both imports finish, every
    message is stored once."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    chain = build_chain()
    wecom_world(chain)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_pause_before() RETURNS trigger AS $$ BEGIN"
            " IF NEW.content = 'pause' THEN PERFORM pg_sleep(1); END IF; RETURN NEW;"
            " END $$ LANGUAGE plpgsql;"
            " CREATE TRIGGER test_pause BEFORE INSERT ON demand_message FOR EACH ROW"
            " EXECUTE FUNCTION test_pause_before()"
        )

    def run(keys: list[str]) -> tuple[int, int]:
        lines = (
            archive_lines(keys[:1])
            + archive_lines(keys[1:2], content="pause")
            + archive_lines(keys[2:])
        )
        try:
            report = import_messages(chain.hq, read_jsonl(io.StringIO("\n".join(lines))))
            return report.imported, report.duplicates
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(run, ["deadlock-a", "deadlock-b", "only-first"])
            second = pool.submit(run, ["deadlock-b", "deadlock-a", "only-second"])
            results = sorted([first.result(timeout=60), second.result(timeout=60)])
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER test_pause ON demand_message; DROP FUNCTION test_pause_before()"
            )
    assert results == [(1, 2), (3, 0)]  # the victim stored only its own message
    stored = sorted(Message.objects.values_list("platform_msg_id", flat=True))
    assert stored == ["deadlock-a", "deadlock-b", "only-first", "only-second"]


@pytest.mark.django_db
def test_what_messages_name_cannot_be_deleted_through_the_orm(chain: Chain) -> None:
    """The database checks none of a message's references (see ``Message``); ``PROTECT`` still
    refuses deleting the group, member or staff account a stored message names."""
    world = wecom_world(chain)
    with (FIXTURES / "wecom_archive.jsonl").open(encoding="utf-8") as stream:
        import_messages(chain.hq, read_jsonl(stream))
    for named in (world["group"], world["member"], chain.operator_a.user):
        with pytest.raises(ProtectedError) as refused:
            named.delete()
        assert any(isinstance(row, Message) for row in refused.value.protected_objects)
    assert Message.objects.count() == 7


# What the fast reader may meet in an archive line: each field of the usual record replaced by
# one well formed, absent, null, of another type, padded with spaces, too long, or holding NUL.
_USUAL = {
    "msgid": "CAQQluDa4QUY0On2rYSAgAMg",
    "action": "send",
    "from": MEMBER_ID,
    "roomid": ROOM,
    "msgtime": 1_764_000_000_000,
    "msgtype": "text",
    "text": {"content": " 想要小包装 "},
}
_TEXTS = st.one_of(
    st.sampled_from(
        ["CAQQluDa4QUY0On2rYSAgAMg", " padded ", "", "x" * 129, "a\x00b", "想要小包装"]
    ),
    st.text(max_size=12),
)
_VALUES = st.one_of(_TEXTS, st.none(), st.integers(-5, 5), st.floats(allow_nan=False))
_CHANGES = {
    "msgid": _VALUES,
    "roomid": _VALUES,
    "from": _VALUES,
    "action": st.one_of(st.sampled_from(["recall", "switch"]), _VALUES),
    "msgtype": st.one_of(st.sampled_from(["image", "link"]), _VALUES),
    "msgtime": st.one_of(st.integers(946_684_799_999, 946_684_800_001), _VALUES),
    "text": st.one_of(st.fixed_dictionaries({"content": _VALUES}), _VALUES),
}


@settings(max_examples=400, deadline=None)
@given(
    changed=st.fixed_dictionaries({}, optional=_CHANGES),
    dropped=st.sets(st.sampled_from(sorted(_USUAL)), max_size=2),
)
@example(changed={}, dropped=set())  # the usual record itself
@example(changed={}, dropped={"from"})
@example(changed={"msgtime": 946_684_800_000, "text": {"content": "x" * 5000}}, dropped=set())
def test_the_fast_reader_reads_a_line_as_the_general_one_or_leaves_it(
    changed: dict[str, Any], dropped: set[str]
) -> None:
    """``_plain_text_message`` either declines a line or reads it exactly as ``_wecom`` does
    (the same record, or the same refusal); and it takes the usual record."""
    from shequn.demand.ingest import _Bad, _nul_free, _plain_text_message, _wecom

    def outcome(read: Any) -> Any:
        try:
            return read()
        except _Bad as bad:
            return f"bad: {bad}"

    record = {k: v for k, v in {**_USUAL, **changed}.items() if k not in dropped}
    line = json.dumps(record, ensure_ascii=False)
    fast = outcome(lambda: _plain_text_message(7, line.encode()))
    if not changed and dropped <= {"from"}:
        assert isinstance(fast, tuple)
    if fast is not None:
        assert fast == outcome(lambda: _nul_free(_wecom(7, json.loads(line))))


def test_lines_the_fast_reader_cannot_take_are_judged_by_the_general_one() -> None:
    """Nesting too deep, bad UTF-8 in a field the record uses, a lone surrogate in a text
    stream: one bad line each (as the general reader says), never the end of the import. Bad
    bytes only in a field no one reads cost nothing: the message is stored."""
    good = archive_lines(["ok"])[0]
    deep = '{"msgid": "d", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    bad_content = good.replace("想要小包装", "X").encode().replace(b"X", b"\xff")
    unread = good[:-1].encode() + b', "x": "\xff"}'
    lines = [deep.encode(), bad_content, unread, good.encode()]
    read = list(read_jsonl(io.BytesIO(b"\n".join(lines))))
    assert [type(r).__name__ for r in read] == ["BadRecord", "BadRecord", "Incoming", "Incoming"]
    assert read[1] == BadRecord(2, "不是 UTF-8 编码的文本")
    text = list(read_jsonl(io.StringIO(good[:-1] + ', "x": "\ud800"}\n' + good)))
    assert [type(r).__name__ for r in text] == ["BadRecord", "Incoming"]
