"""WeCom callbacks "may be out of order, may be lost": member changes are applied one after
another only while their member versions chain; otherwise the group is marked, and the sweep
reads the member list back with ``groupchat/get`` (a simulated WeCom on loopback, speaking the
published format) until our stays match WeCom's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shequn.core import timeutil
from shequn.core.models import AuditEvent
from shequn.groups.actions import join_group
from shequn.groups.models import CustomerGroup, GroupMembership, GroupStatus, JoinChannel
from shequn.groups.wecom_sync import RESYNC_LEFT, resync_group_members, sweep_wecom_resyncs
from shequn.integrations.wecom.client import WeComClient, WeComError
from shequn.integrations.wecom.simulator import SimulatedWeCom, serve_in_thread
from tests.conftest import Chain
from tests.groups.test_wecom_callback import CORP, ROOM, deliver, wecom  # noqa: F401 - fixture
from tests.referrals.test_commission_lifecycle import member

pytestmark = pytest.mark.django_db
SECRET = "contact-secret-for-tests"
A, B, STRANGER = "wmAAA111", "wmBBB222", "wmStranger"
GETS = "/cgi-bin/externalcontact/groupchat/get"


@pytest.fixture
def platform(wecom: dict[str, Any], settings: Any) -> Iterator[SimulatedWeCom]:  # noqa: F811
    simulated = SimulatedWeCom(corp_id=CORP, secret=SECRET)
    simulated.create_chat(ROOM, name="妈妈群")
    server = serve_in_thread(simulated)
    settings.WECOM = {
        **settings.WECOM,
        "CONTACT_SECRET": SECRET,
        "API_BASE": f"http://127.0.0.1:{server.server_port}",
    }
    yield simulated
    server.shutdown()
    server.server_close()


def staying(group: CustomerGroup) -> set[int]:
    return set(
        GroupMembership.objects.filter(group=group, left_at__isnull=True).values_list(
            "member_id", flat=True
        )
    )


def group_of(wecom: dict[str, Any]) -> CustomerGroup:  # noqa: F811
    return CustomerGroup.objects.get(pk=wecom["group"].pk)


def test_a_first_change_is_applied_and_checked_then_changes_that_follow_on_are_applied(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
) -> None:
    people, group = wecom["people"], wecom["group"]
    assert deliver(platform.add_members(ROOM, [A])).status_code == 200
    assert staying(group) == {people[A].pk}
    assert group_of(wecom).wecom_resync_due_at is not None  # where we started is unknown
    assert platform.calls[GETS] == 0  # the callback itself never calls WeCom
    assert sweep_wecom_resyncs() == 1
    assert staying(group) == {people[A].pk}
    assert group_of(wecom).wecom_member_version == platform.chats[ROOM].version

    assert deliver(platform.add_members(ROOM, [B, STRANGER])).status_code == 200
    assert deliver(platform.remove_members(ROOM, [A], quit_scene=1)).status_code == 200
    assert staying(group) == {people[B].pk}
    refreshed = group_of(wecom)
    assert (refreshed.wecom_member_version, refreshed.wecom_resync_due_at) == (
        platform.chats[ROOM].version,
        None,
    )
    assert platform.calls[GETS] == 1  # followed on: nothing read back
    assert sweep_wecom_resyncs() == 0


def baseline(platform: SimulatedWeCom) -> None:
    """Our group and WeCom's agree on an empty member list, at WeCom's current version."""
    CustomerGroup.objects.filter(external_chat_id=ROOM).update(
        wecom_member_version=platform.chats[ROOM].version
    )


def test_a_lost_callback_is_repaired_by_a_full_resync(
    chain: Chain,
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
) -> None:
    people, group = wecom["people"], wecom["group"]
    by_qr_code = member(chain, 30)  # joined in the mini program, no WeCom identity: left alone
    join_group(group=group, member=by_qr_code, channel=JoinChannel.STORE_QR)
    baseline(platform)
    deliver(platform.add_members(ROOM, [A]))
    platform.add_members(ROOM, [B])  # lost on the way
    late = platform.remove_members(ROOM, [A])
    assert deliver(late).status_code == 200
    assert staying(group) == {by_qr_code.pk, people[A].pk}  # not applied: it does not follow on
    assert group_of(wecom).wecom_resync_due_at is not None

    assert sweep_wecom_resyncs() == 1
    assert staying(group) == {by_qr_code.pk, people[B].pk}  # WeCom's customers, and the rest
    a_stay = GroupMembership.objects.get(group=group, member=people[A])
    assert a_stay.left_reason == RESYNC_LEFT
    b_stay = GroupMembership.objects.get(group=group, member=people[B])
    assert b_stay.join_channel == JoinChannel.WECOM
    assert group_of(wecom).member_count == 2
    audit = AuditEvent.objects.get(action="groups.wecom_resynced")
    assert (audit.details["joined"], audit.details["left"]) == (1, 1)

    assert deliver(late).status_code == 200  # WeCom repeats the late one: nothing changes
    assert sweep_wecom_resyncs() == 0
    assert platform.calls[GETS] == 1


def test_callbacks_out_of_order_end_where_wecom_is(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
) -> None:
    people, group = wecom["people"], wecom["group"]
    baseline(platform)
    first = platform.add_members(ROOM, [A, B])
    second = platform.remove_members(ROOM, [B])
    deliver(second)  # before the one it follows
    deliver(first)  # follows on from our version: applied
    assert staying(group) == {people[A].pk, people[B].pk}
    sweep_wecom_resyncs()
    assert staying(group) == {people[A].pk}
    assert {people[u].pk for u in platform.customers(ROOM)} == staying(group)
    assert group_of(wecom).wecom_member_version == platform.chats[ROOM].version


def test_a_failed_read_changes_nothing_and_is_tried_again_later(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
) -> None:
    group = wecom["group"]
    platform.add_members(ROOM, [A])
    CustomerGroup.objects.filter(pk=group.pk).update(wecom_resync_due_at=timeutil.now())
    platform.fail_next(-1)  # WeCom answers HTTP 500
    assert sweep_wecom_resyncs() == 0
    due = group_of(wecom).wecom_resync_due_at
    assert due is not None
    assert due > timeutil.now() + timedelta(minutes=4)
    assert staying(group) == set()
    assert sweep_wecom_resyncs() == 0  # not due yet

    CustomerGroup.objects.filter(pk=group.pk).update(wecom_resync_due_at=timeutil.now())
    platform.fail_next(45009)  # over the call frequency limit: an errcode, not an HTTP error
    assert sweep_wecom_resyncs() == 0
    CustomerGroup.objects.filter(pk=group.pk).update(wecom_resync_due_at=timeutil.now())
    assert sweep_wecom_resyncs() == 1
    assert staying(group) == {wecom["people"][A].pk}


def test_an_expired_token_is_renewed_once_and_a_wrong_secret_is_named(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
    settings: Any,
) -> None:
    client = WeComClient(settings.WECOM["API_BASE"], CORP, SECRET)
    platform.add_members(ROOM, [A])
    assert client.group_chat(ROOM).customers == {A}
    platform.expire_tokens()
    assert client.group_chat(ROOM).customers == {A}  # 42001 → a new token → the same call
    assert platform.calls["/cgi-bin/gettoken"] == 2
    with pytest.raises(WeComError) as unknown:
        client.group_chat("wrNoSuchChat")
    assert unknown.value.code == 40050

    wrong = WeComClient(settings.WECOM["API_BASE"], CORP, "not-the-secret")
    with pytest.raises(WeComError) as refused:
        wrong.group_chat(ROOM)
    assert refused.value.code == 40001
    nowhere = WeComClient("http://127.0.0.1:9", CORP, SECRET, timeout_s=2)
    with pytest.raises(WeComError, match="无法连接企业微信"):
        nowhere.group_chat(ROOM)


def test_without_a_contact_secret_marked_groups_wait(
    wecom: dict[str, Any],  # noqa: F811
    settings: Any,
) -> None:
    settings.WECOM = {**settings.WECOM, "CONTACT_SECRET": ""}
    CustomerGroup.objects.filter(pk=wecom["group"].pk).update(wecom_resync_due_at=timeutil.now())
    assert sweep_wecom_resyncs() == 0
    assert group_of(wecom).wecom_resync_due_at is not None


def test_a_closed_group_takes_no_one_in_but_still_lets_people_go(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
    settings: Any,
) -> None:
    people, group = wecom["people"], wecom["group"]
    join_group(group=group, member=people[A], channel=JoinChannel.WECOM)
    platform.add_members(ROOM, [B])
    CustomerGroup.objects.filter(pk=group.pk).update(status=GroupStatus.CLOSED)
    client = WeComClient(settings.WECOM["API_BASE"], CORP, SECRET)
    outcome = resync_group_members(group.pk, client)
    assert outcome == "全量同步: 入群 0 人, 退群 1 人, 1 人未能入群(群已关闭或已满)"
    assert staying(group) == set()


def test_one_group_that_fails_does_not_hold_up_the_others(
    chain: Chain,
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever goes wrong with one group (here: an error that is not WeCom's), the sweep goes
    on to the next and tries the failed one again five minutes later."""
    from shequn.groups import wecom_sync
    from tests.conftest import make_group

    first = wecom["group"]
    second = make_group(chain.manager_a, chain.store_a, name="第二个群")
    platform.create_chat("wrSecondRoom")
    platform.add_members("wrSecondRoom", [A])
    CustomerGroup.objects.filter(pk=second.pk).update(external_chat_id="wrSecondRoom")
    earlier = timeutil.now() - timedelta(minutes=1)
    CustomerGroup.objects.filter(pk=first.pk).update(wecom_resync_due_at=earlier)
    CustomerGroup.objects.filter(pk=second.pk).update(wecom_resync_due_at=timeutil.now())
    real = wecom_sync.resync_group_members

    def broken_for_the_first(group_id: int, client: WeComClient) -> str:
        if group_id == first.pk:
            raise RuntimeError("something unexpected")
        return real(group_id, client)

    monkeypatch.setattr(wecom_sync, "resync_group_members", broken_for_the_first)
    assert sweep_wecom_resyncs() == 1
    assert staying(second) == {wecom["people"][A].pk}
    retry = CustomerGroup.objects.get(pk=first.pk).wecom_resync_due_at
    assert retry is not None
    assert retry > timeutil.now() + timedelta(minutes=4)


def test_without_a_contact_secret_callbacks_are_applied_as_they_come(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
    settings: Any,
) -> None:
    """No way to read WeCom back: every change is applied (as before versions were read), so
    a deployment without the secret keeps its memberships moving."""
    settings.WECOM = {**settings.WECOM, "CONTACT_SECRET": ""}
    group = wecom["group"]
    deliver(platform.add_members(ROOM, [A]))
    platform.add_members(ROOM, [B])  # lost
    deliver(platform.remove_members(ROOM, [A]))  # does not follow on: applied all the same
    assert staying(group) == set()
    refreshed = group_of(wecom)
    assert refreshed.wecom_member_version == platform.chats[ROOM].version
    assert refreshed.wecom_resync_due_at is None
    assert platform.calls[GETS] == 0


def test_a_callback_that_chains_on_during_a_resync_is_not_undone(
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
    settings: Any,
) -> None:
    people, group = wecom["people"], wecom["group"]
    baseline(platform)

    class CallbackMeanwhile(WeComClient):
        def group_chat(self, chat_id: str) -> Any:
            chat = super().group_chat(chat_id)  # WeCom's list as it was
            deliver(platform.add_members(ROOM, [B]))  # B joins, and the callback chains on
            return chat

    client = CallbackMeanwhile(settings.WECOM["API_BASE"], CORP, SECRET)
    assert resync_group_members(group.pk, client) == "同步期间有新的成员变更, 稍后重新同步"
    assert staying(group) == {people[B].pk}  # not taken out again by the stale list
    assert group_of(wecom).wecom_resync_due_at is not None  # read again by the next sweep
    assert sweep_wecom_resyncs() == 1
    assert staying(group) == {people[B].pk}


def test_wecom_unreachable_stops_the_run_and_an_unknown_chat_clears_its_mark(
    chain: Chain,
    wecom: dict[str, Any],  # noqa: F811
    platform: SimulatedWeCom,
) -> None:
    from tests.conftest import make_group

    first, second = wecom["group"], make_group(chain.manager_a, chain.store_a, name="第二个群")
    CustomerGroup.objects.filter(pk=second.pk).update(external_chat_id="wrNotInWeCom")
    marked = timeutil.now() - timedelta(minutes=1)
    CustomerGroup.objects.filter(pk__in=[first.pk, second.pk]).update(wecom_resync_due_at=marked)
    platform.fail_next(-1)  # the first read: HTTP 500
    assert sweep_wecom_resyncs() == 0
    assert CustomerGroup.objects.get(pk=second.pk).wecom_resync_due_at == marked  # not tried
    assert sum(platform.calls.values()) == 1

    CustomerGroup.objects.filter(pk=first.pk).update(wecom_resync_due_at=None)
    assert sweep_wecom_resyncs() == 0  # 40050: WeCom does not know the chat
    assert CustomerGroup.objects.get(pk=second.pk).wecom_resync_due_at is None
