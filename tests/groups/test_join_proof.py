"""Joining proves the phone: no member token, member row or cashier reward for a number that
was only typed in (printed QR codes are public), and no answer that tells whether a phone is
already a member before it is proven."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from shequn.core.errors import InvalidInput
from shequn.groups import actions as group_actions
from shequn.groups.models import GroupMembership, RecruitmentReward
from shequn.members.actions import PhoneProof
from shequn.members.models import ChannelIdentity, Member
from tests.conftest import api_join, texted_code
from tests.world import World


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_join_without_the_texted_code_gets_nothing(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    rewards = RecruitmentReward.objects.count()
    bare = post(Client(), "/api/join", {"code": code, "phone": "13755550001"})
    assert bare.status_code == 422
    assert "member_token" not in bare.json()
    post(Client(), "/api/join/sms", {"code": code, "phone": "13755550001"})
    wrong = "000000" if texted_code("13755550001") != "000000" else "111111"
    guessed = post(Client(), "/api/join", {"code": code, "phone": "13755550001", "sms_code": wrong})
    assert guessed.status_code == 422
    assert guessed.json()["code"] == "wrong_code"
    assert not Member.objects.filter(phone="+8613755550001").exists()
    assert RecruitmentReward.objects.count() == rewards


def test_proven_join_issues_the_token_and_books_the_reward(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    rewards = RecruitmentReward.objects.count()
    response = api_join(Client(), code, "13755550002", name="王阿姨")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["member_token"]
    assert "member_created" not in body  # would tell anyone whether the phone was known
    assert RecruitmentReward.objects.count() == rewards + 1
    earnings = Client().get("/api/member/earnings", HTTP_X_MEMBER_TOKEN=body["member_token"])
    assert earnings.status_code == 200


def test_a_code_proves_one_join(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    post(Client(), "/api/join/sms", {"code": code, "phone": "13755550003"})
    body = {"code": code, "phone": "13755550003", "sms_code": texted_code("13755550003")}
    assert post(Client(), "/api/join", body).status_code == 201
    again = post(Client(), "/api/join", body)
    assert again.status_code == 422
    assert again.json()["code"] == "code_expired"


def test_the_code_step_answers_alike_for_members_and_strangers(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    known = post(Client(), "/api/join/sms", {"code": code, "phone": world.member_a.phone})
    stranger = post(Client(), "/api/join/sms", {"code": code, "phone": "13755550004"})
    assert known.status_code == stranger.status_code == 202
    assert known.json() == stranger.json()


def test_an_openid_in_the_body_is_not_attached(world: World) -> None:
    """Only an identity the platform's OAuth obtained may be bound; a client's claim is not."""
    code = group_actions.invitation_code(world.invitation_a)
    response = api_join(Client(), code, "13755550005", wechat_openid="o-claimed")
    assert response.status_code == 201
    assert not ChannelIdentity.objects.filter(value="o-claimed").exists()


def test_a_proof_from_another_chain_does_not_join(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    with pytest.raises(InvalidInput) as refused:
        group_actions.join_by_invitation(
            code=code, proof=PhoneProof.vouched(world.chain.hq.chain_id + 999, "13755550006")
        )
    assert refused.value.code == "phone_not_proven"
    assert not Member.objects.filter(phone="+8613755550006").exists()


def _page(client: Client, code: str, **form: str) -> Any:
    return client.post(f"/j/{code}/", data=form)


def test_join_page_needs_the_code_and_does_not_tell_who_is_a_member(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    stays = GroupMembership.objects.count()
    # Straight to "join" with a phone and no code: refused, nothing written.
    direct = _page(Client(), code, phone="13755550007", action="join")
    assert direct.status_code == 422
    assert GroupMembership.objects.count() == stays
    assert not Member.objects.filter(phone="+8613755550007").exists()
    # An existing member's phone and a stranger's get the same page.
    member_page = _page(Client(), code, phone=world.member_a.phone, action="send")
    stranger_page = _page(Client(), code, phone="13755550008", action="send")
    assert member_page.status_code == stranger_page.status_code == 200
    assert "已在" not in member_page.content.decode()
    assert 'id="code-sent"' in member_page.content.decode()
    assert 'id="code-sent"' in stranger_page.content.decode()
    # With the texted code the stranger joins and is logged in on the member pages.
    client = Client()
    _page(client, code, phone="13755550009", action="send")
    joined = _page(
        client, code, phone="13755550009", sms_code=texted_code("13755550009"), action="join"
    )
    assert joined.status_code == 200
    assert 'id="joined"' in joined.content.decode()
    assert client.get("/m/orders/").status_code == 200  # logged in, not sent to the login page


def test_joining_members_may_consent_to_chat_analysis(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    response = api_join(Client(), code, "13755550010", consent_chat_analysis=True)
    assert response.status_code == 201
    member = Member.objects.get(phone="+8613755550010")
    assert member.consent_chat_analysis
    assert member.consent_chat_analysis_at is not None
    assert not member.consent_marketing
    client = Client()
    _page(client, code, phone="13755550011", action="send")
    _page(
        client,
        code,
        phone="13755550011",
        sms_code=texted_code("13755550011"),
        consent_chat_analysis="1",
        action="join",
    )
    assert Member.objects.get(phone="+8613755550011").consent_chat_analysis
