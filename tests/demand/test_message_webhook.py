"""The signed message webhook: a signed delivery stores its messages once, by the file
importer's code; the same messages again (a new nonce) add nothing; a tampered body, a stale
timestamp or a reused nonce is refused with nothing written, not even the nonce; unreadable
bodies are a 400, oversize ones a 413, an unconfigured deployment a 503; a bad record among
good ones is named by its index and the others are stored."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from shequn.core import timeutil
from shequn.core.models import WebhookNonce
from shequn.demand.models import Message, MessageType
from shequn.demand.webhook import SOURCE, sign
from shequn.groups.models import CustomerGroup
from shequn.members.models import ChannelIdentity, IdentityChannel
from tests.conftest import Chain, build_chain, make_group
from tests.referrals.test_commission_lifecycle import member

pytestmark = pytest.mark.django_db
URL = "/webhooks/demand/messages"
SECRET = "whsec-test-0123456789abcdef0123456789abcdef"
ROOM = "wrWebhookRoom000000000000000AAA"
CUSTOMER = "wmWebhookCustomer0000000000001"


@pytest.fixture
def hook(chain: Chain, settings: Any) -> dict[str, Any]:
    settings.MESSAGE_WEBHOOK = {"SECRET": SECRET, "CHAIN_CODE": chain.hq.code}
    group = make_group(chain.manager_a, chain.store_a)
    CustomerGroup.objects.filter(pk=group.pk).update(external_chat_id=ROOM)
    other = make_group(chain.manager_b, chain.store_b, name="楼盘群")
    customer = member(chain, 60)
    ChannelIdentity.objects.create(
        chain=chain.hq,
        member=customer,
        channel=IdentityChannel.WECOM_EXTERNAL_USERID,
        value=CUSTOMER,
    )
    return {"group": group, "other": other, "member": customer}


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "msgid": f"hook-{n}",
        "chat_id": ROOM,
        "sender": CUSTOMER,
        "time": "2026-11-24T09:30:00+08:00",
        "content": f"第{n}条: 要是有小包装的艾灸贴就好了",
        **extra,
    }


def body_of(*records: Any) -> bytes:
    return json.dumps({"messages": list(records)}, ensure_ascii=False).encode()


def deliver(
    body: bytes,
    *,
    nonce: str | None = None,
    when: int | None = None,
    signed_body: bytes | None = None,
    secret: str = SECRET,
) -> Any:
    timestamp = str(int(time.time()) if when is None else when)
    nonce = nonce or secrets.token_hex(16)
    signature = sign(secret, timestamp, nonce, body if signed_body is None else signed_body)
    return Client().post(
        URL,
        body,
        content_type="application/json",
        headers={
            "X-Shequn-Timestamp": timestamp,
            "X-Shequn-Nonce": nonce,
            "X-Shequn-Signature": signature,
        },
    )


def nothing_written() -> bool:
    return not Message.objects.exists() and not WebhookNonce.objects.exists()


def test_a_signed_delivery_is_stored_and_the_same_again_adds_nothing(
    hook: dict[str, Any],
) -> None:
    body = body_of(record(1), record(2, type="link"), record(3, group_id=hook["other"].pk))
    answer = deliver(body)
    assert answer.status_code == 200
    assert answer.json() == {"stored": 3, "duplicates": 0, "bad": []}
    rows = {m.platform_msg_id: m for m in Message.objects.all()}
    first = rows["hook-1"]
    assert (first.platform, first.group_id, first.sender_member_id, first.label) == (
        "webhook",
        hook["group"].pk,
        hook["member"].pk,
        "",
    )
    assert first.content == "第1条: 要是有小包装的艾灸贴就好了"
    assert first.sent_at.timestamp() == 1795483800  # 2026-11-24 01:30 UTC
    assert rows["hook-2"].msg_type == MessageType.LINK
    assert rows["hook-3"].group_id == hook["other"].pk

    again = deliver(body)  # a retry: new nonce, same messages
    assert again.status_code == 200
    assert again.json() == {"stored": 0, "duplicates": 3, "bad": []}
    assert Message.objects.count() == 3
    assert WebhookNonce.objects.filter(source=SOURCE).count() == 2


def test_a_record_may_name_its_platform_and_a_message_twice_in_one_delivery_counts_once(
    hook: dict[str, Any], settings: Any
) -> None:
    settings.MESSAGE_WEBHOOK = {**settings.MESSAGE_WEBHOOK, "PLATFORMS": "webhook,wecom"}
    answer = deliver(body_of(record(1, platform="wecom"), record(1), record(1)))
    assert answer.json() == {"stored": 2, "duplicates": 1, "bad": []}
    assert set(Message.objects.values_list("platform", flat=True)) == {"wecom", "webhook"}


def test_bad_records_are_named_by_index_and_the_others_stored(hook: dict[str, Any]) -> None:
    body = body_of(
        record(1),
        "not an object",
        record(3, time="2026-11-24 09:30"),  # no offset
        {"msgid": "hook-4", "time": 1764000000000},  # no group
        record(5, chat_id="wrSomeoneElsesRoom"),
        record(6, platform="wecom"),  # well formed, but not claimable unless configured
        record(7, content="a\u0000b"),
        record(8, group_id="²"),
        record(9, group_id=str(10**30)),
        record(10, type="audio"),
        record(11),
    )
    answer = deliver(body)
    assert answer.status_code == 200
    report = answer.json()
    assert (report["stored"], report["duplicates"]) == (2, 0)
    reasons = {bad["index"]: bad["reason"] for bad in report["bad"]}
    assert [bad["index"] for bad in report["bad"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert reasons[1] == "每条消息须为一个 JSON 对象"
    assert reasons[2].startswith("时间须带时区")
    assert reasons[3] == "缺少 chat_id 或 group_id"
    assert reasons[4] == "本连锁没有这个群: wrSomeoneElsesRoom"
    assert reasons[5] == "platform 须为以下之一: webhook"
    assert reasons[6] == "含有不允许的字符 (NUL)"
    assert reasons[7] == "group_id 须为整数"  # "²" is a digit to Python, not a number
    assert reasons[8] == "group_id 须为整数"
    assert reasons[9] == "未知的消息类型: audio"
    assert set(Message.objects.values_list("platform_msg_id", flat=True)) == {"hook-1", "hook-11"}


def test_a_tampered_body_is_refused_and_nothing_is_written(hook: dict[str, Any]) -> None:
    signed = body_of(record(1))
    tampered = body_of(record(1, content="加我vx 代购"))
    answer = deliver(tampered, nonce="nonce-tampered-1", signed_body=signed)
    assert answer.status_code == 403
    assert answer.json()["code"] == "bad_signature"
    assert nothing_written()
    assert deliver(signed, secret="another-secret").status_code == 403
    assert nothing_written()
    # the refused nonce was not recorded: the genuine delivery with it goes through
    assert deliver(signed, nonce="nonce-tampered-1").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Shequn-Timestamp": "1", "X-Shequn-Nonce": "abcdefgh"},
        {"X-Shequn-Timestamp": "now", "X-Shequn-Nonce": "abcdefgh", "X-Shequn-Signature": "0" * 64},
        {"X-Shequn-Timestamp": "1", "X-Shequn-Nonce": "short", "X-Shequn-Signature": "0" * 64},
        {"X-Shequn-Timestamp": "1", "X-Shequn-Nonce": "abcdefgh", "X-Shequn-Signature": "zz"},
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(
    hook: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = Client().post(
        URL, body_of(record(1)), content_type="application/json", headers=headers
    )
    assert answer.status_code == 403
    assert nothing_written()


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_a_timestamp_outside_the_window_is_refused(hook: dict[str, Any], skew: int) -> None:
    answer = deliver(body_of(record(1)), when=int(time.time()) + skew)
    assert answer.status_code == 403
    assert answer.json()["code"] == "stale_timestamp"
    assert nothing_written()


def test_a_reused_nonce_is_refused_as_a_replay(hook: dict[str, Any]) -> None:
    assert deliver(body_of(record(1)), nonce="replayed-nonce-01").status_code == 200
    answer = deliver(body_of(record(2)), nonce="replayed-nonce-01")
    assert answer.status_code == 403
    assert answer.json()["code"] == "replayed_nonce"
    assert answer.json()["message"] == "该 X-Shequn-Nonce 已使用过, 疑似重放"
    assert list(Message.objects.values_list("platform_msg_id", flat=True)) == ["hook-1"]


def test_nonces_are_kept_ten_minutes_then_pruned(hook: dict[str, Any]) -> None:
    now = timeutil.now()
    WebhookNonce.objects.create(
        source=SOURCE, nonce="old-nonce-11min", created_at=now - timedelta(minutes=11)
    )
    WebhookNonce.objects.create(
        source=SOURCE, nonce="new-nonce-09min", created_at=now - timedelta(minutes=9)
    )
    WebhookNonce.objects.create(
        source="other-hook", nonce="old-nonce-11min", created_at=now - timedelta(minutes=11)
    )
    assert deliver(body_of(record(1))).status_code == 200
    kept = set(WebhookNonce.objects.values_list("source", "nonce"))
    assert ("demand-messages", "old-nonce-11min") not in kept
    assert {("demand-messages", "new-nonce-09min"), ("other-hook", "old-nonce-11min")} <= kept


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"messages": [', "invalid_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b'{"messages": [{"msgid": "x", "time": NaN}]}', "invalid_json"),
        (b"[]", "invalid_shape"),
        (b'{"messages": {"msgid": "x"}}', "invalid_shape"),
        (b'{"records": []}', "invalid_shape"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ],
)
def test_an_unreadable_body_is_a_400_with_nothing_written(
    hook: dict[str, Any], body: bytes, code: str
) -> None:
    answer = deliver(body)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert nothing_written()


def test_oversize_deliveries_are_a_413(hook: dict[str, Any]) -> None:
    huge = body_of(record(1, content="好" * 400_000))  # 1.2 MB of UTF-8
    answer = deliver(huge)
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"
    many = body_of(*(record(n) for n in range(1001)))
    answer = deliver(many)
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_many_messages"
    assert nothing_written()
    assert deliver(body_of(*(record(n) for n in range(1000)))).json()["stored"] == 1000


@pytest.mark.parametrize(
    "config", [{"SECRET": "", "CHAIN_CODE": "x"}, {"SECRET": SECRET, "CHAIN_CODE": "no-such-chain"}]
)
def test_an_unconfigured_webhook_answers_503(
    hook: dict[str, Any], settings: Any, config: dict[str, str]
) -> None:
    if config["CHAIN_CODE"] == "x":
        config = {**config, "CHAIN_CODE": settings.MESSAGE_WEBHOOK["CHAIN_CODE"]}
    settings.MESSAGE_WEBHOOK = config
    answer = deliver(body_of(record(1)))
    assert answer.status_code == 503
    assert answer.json() == {"code": "not_configured", "message": "群消息 Webhook 未配置"}
    assert nothing_written()


def test_a_short_secret_keeps_the_webhook_off(hook: dict[str, Any], settings: Any) -> None:
    settings.MESSAGE_WEBHOOK = {**settings.MESSAGE_WEBHOOK, "SECRET": "x" * 31}
    answer = deliver(body_of(record(1)), secret="x" * 31)
    assert answer.status_code == 503
    assert answer.json()["code"] == "weak_secret"
    assert nothing_written()


def test_the_platforms_a_record_may_claim_are_configured(
    hook: dict[str, Any], settings: Any
) -> None:
    settings.MESSAGE_WEBHOOK = {**settings.MESSAGE_WEBHOOK, "PLATFORMS": "bridge-a, Bad Name"}
    answer = deliver(body_of(record(1, platform="bridge-a"), record(2, platform="wecom")))
    assert answer.json()["bad"] == [
        {"index": 1, "reason": "platform 须为以下之一: bridge-a, webhook"}
    ]
    assert list(Message.objects.values_list("platform", flat=True)) == ["bridge-a"]


def test_only_post_is_allowed(hook: dict[str, Any]) -> None:
    assert Client().get(URL).status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_deliveries_store_each_message_once_and_a_nonce_passes_once(
    settings: Any,
) -> None:
    chain = build_chain()
    settings.MESSAGE_WEBHOOK = {"SECRET": SECRET, "CHAIN_CODE": chain.hq.code}
    group = make_group(chain.manager_a, chain.store_a)
    CustomerGroup.objects.filter(pk=group.pk).update(external_chat_id=ROOM)
    body = body_of(*(record(n) for n in range(50)))

    def post(nonce: str) -> tuple[int, int]:
        try:
            answer = deliver(body, nonce=nonce)
            return answer.status_code, answer.json().get("stored", 0)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(post, ["raced-nonce-0001"] * 8))
    assert sorted(status for status, _ in same) == [200] + [403] * 7
    with ThreadPoolExecutor(max_workers=8) as pool:
        fresh = list(pool.map(post, [f"fresh-nonce-{n:04}" for n in range(8)]))
    assert {status for status, _ in fresh} == {200}
    assert sum(stored for _, stored in same + fresh) == 50
    assert Message.objects.count() == 50
