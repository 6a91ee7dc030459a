"""Importing group messages: the WeCom chat-archive record format and the generic JSONL/CSV
columns; members and staff matched by their WeCom ids; one-to-one chats skipped; a record
delivered twice or a file imported twice stored once; bad records reported by line and
skipped, the rest stored whole; then the classify sweep labels members' messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shequn.demand.actions import classify_pending
from shequn.demand.ingest import import_messages, read_csv, read_jsonl
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
