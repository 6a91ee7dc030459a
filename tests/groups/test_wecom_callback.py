"""The WeCom callback URL: the GET check echoes the decrypted echostr; group-change events
(add_member with MemChangeList, del_member with QuitScene, dismiss) update our groups once each,
however often WeCom repeats them; a bad signature, a stale timestamp or another corp's event is
refused with nothing changed."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from shequn.groups.models import (
    CustomerGroup,
    GroupChangeEvent,
    GroupMembership,
    GroupStatus,
    JoinChannel,
)
from shequn.integrations.wecom.crypto import CallbackKeys, seal_message, signature
from shequn.members.models import ChannelIdentity, IdentityChannel
from tests.conftest import Chain, make_group
from tests.referrals.test_commission_lifecycle import member

pytestmark = pytest.mark.django_db
CORP = "ww1436e0e65a779aee"
KEYS = CallbackKeys("cb-token", base64.b64encode(bytes(range(1, 33))).decode().rstrip("="), CORP)
ROOM = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
URL = "/webhooks/wecom/callback"


@pytest.fixture
def wecom(chain: Chain, settings: Any) -> dict[str, Any]:
    settings.WECOM = {
        "CORP_ID": CORP,
        "CALLBACK_TOKEN": KEYS.token,
        "CALLBACK_AES_KEY": KEYS.encoding_aes_key,
        "CHAIN_CODE": chain.hq.code,
    }
    group = make_group(chain.manager_a, chain.store_a)
    CustomerGroup.objects.filter(pk=group.pk).update(external_chat_id=ROOM)
    people = {}
    for n, userid in enumerate(("wmAAA111", "wmBBB222")):
        person = member(chain, 10 + n)
        ChannelIdentity.objects.create(
            chain=chain.hq,
            member=person,
            channel=IdentityChannel.WECOM_EXTERNAL_USERID,
            value=userid,
        )
        people[userid] = person
    return {"group": group, "people": people}


def event(change: str, detail: str = "", members: tuple[str, ...] = (), **extra: str) -> str:
    items = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]>"
        f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]>"
        f"</MsgType><Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{ROOM}]]>"
        f"</ChatId><ChangeType><![CDATA[{change}]]></ChangeType><UpdateDetail><![CDATA[{detail}]]>"
        f"</UpdateDetail><MemChangeCnt>{len(members)}</MemChangeCnt>"
        f"<MemChangeList>{items}</MemChangeList>{fields}</xml>"
    )


def deliver(xml: str, *, keys: CallbackKeys = KEYS, when: int | None = None, sign: str = "") -> Any:
    sealed = seal_message(keys, xml)
    timestamp = str(when or int(time.time()))
    query = {
        "msg_signature": sign or signature(keys.token, timestamp, "n0nce", sealed),
        "timestamp": timestamp,
        "nonce": "n0nce",
    }
    envelope = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{sealed}]]></Encrypt><AgentID></AgentID></xml>"
    url = URL + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return Client().post(url, envelope, content_type="text/xml")


def test_the_url_check_echoes_the_decrypted_echostr(wecom: dict[str, Any]) -> None:
    echostr = seal_message(KEYS, "1616140317555161061")
    timestamp = str(int(time.time()))
    params = {
        "msg_signature": signature(KEYS.token, timestamp, "n", echostr),
        "timestamp": timestamp,
        "nonce": "n",
        "echostr": echostr,
    }
    answer = Client().get(URL, params)
    assert (answer.status_code, answer.content) == (200, b"1616140317555161061")
    assert Client().get(URL, {**params, "msg_signature": "f" * 40}).status_code == 403


def test_members_join_and_leave_once_and_a_dismissed_group_closes(wecom: dict[str, Any]) -> None:
    group, people = wecom["group"], wecom["people"]
    joined = event("update", "add_member", ("wmAAA111", "wmBBB222", "wmStranger"), JoinScene="3")
    assert deliver(joined).status_code == 200
    assert deliver(joined).status_code == 200  # WeCom repeats itself: nothing twice
    stays = GroupMembership.objects.filter(group=group, left_at__isnull=True)
    assert {s.member_id for s in stays} == {p.pk for p in people.values()}
    assert {s.join_channel for s in stays} == {JoinChannel.WECOM}
    recorded = GroupChangeEvent.objects.get()
    assert recorded.outcome == "入群 2 人, 1 人不是本连锁已知会员"

    left = event("update", "del_member", ("wmBBB222",), QuitScene="1")
    assert deliver(left).status_code == 200
    gone = GroupMembership.objects.get(group=group, member=people["wmBBB222"])
    assert gone.left_at is not None
    assert gone.left_reason == "被群主或管理员移出企业微信群"

    assert deliver(event("dismiss")).status_code == 200
    group.refresh_from_db()
    assert group.status == GroupStatus.CLOSED  # closed, never deleted
    assert GroupChangeEvent.objects.count() == 3


@pytest.mark.parametrize("bad", ["signature", "stale", "other_corp", "doctype", "not_configured"])
def test_bad_callbacks_change_nothing(wecom: dict[str, Any], bad: str) -> None:
    xml = event("update", "add_member", ("wmAAA111",))
    if bad == "signature":
        answer = deliver(xml, sign="0" * 40)
    elif bad == "stale":
        answer = deliver(xml, when=int(time.time()) - 3600)
    elif bad == "other_corp":
        answer = deliver(xml, keys=CallbackKeys(KEYS.token, KEYS.encoding_aes_key, "ww-other"))
    elif bad == "doctype":
        answer = deliver('<!DOCTYPE x [<!ENTITY a "a">]>' + xml)
    else:
        with override_settings(
            WECOM={"CORP_ID": "", "CALLBACK_TOKEN": "", "CALLBACK_AES_KEY": "", "CHAIN_CODE": ""}
        ):
            answer = deliver(xml)
    expected = {"doctype": 400, "not_configured": 503}.get(bad, 403)
    assert answer.status_code == expected
    assert not GroupChangeEvent.objects.exists()
    assert not GroupMembership.objects.filter(group=wecom["group"]).exists()
