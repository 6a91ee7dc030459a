"""Ads in groups: under warn-then-remove, a member's first ad is warned and the second removes
them — once each, however often the sweep runs, both in the audit log; under manual handling
the case waits in the queue for one click; staff links are never cases; a store sees and
decides only its own groups' messages and cases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from shequn.core import timeutil
from shequn.core.models import AuditEvent
from shequn.demand.actions import classify_pending
from shequn.demand.ingest import MessageRow, epoch_us, store_rows
from shequn.demand.models import CaseStatus, Message, ModerationCase
from shequn.groups import actions as groups
from shequn.groups.models import GroupMembership, ModerationPolicy
from tests.conftest import Chain, client_for, make_group, phone

pytestmark = pytest.mark.django_db


def post(
    chain: Chain, group: Any, n: int, text: str, *, member: Any = None, staff: Any = None
) -> None:
    store_rows(
        [
            MessageRow(
                chain.hq.pk,
                group.pk,
                "wecom",
                f"m-{group.pk}-{n}",
                member.pk if member else None,
                staff.user_id if staff else None,
                "",
                epoch_us(timeutil.now()),
                "text",
                text,
            )
        ]
    )


def joined(chain: Chain, group: Any, n: int) -> Any:
    return groups.add_member_by_staff(
        acting=chain.manager_a, group=group, phone=phone(n)
    ).membership


def test_warn_then_remove_warns_once_then_removes_once(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    groups.update_group(
        acting=chain.manager_a, group=group, moderation=ModerationPolicy.WARN_THEN_REMOVE
    )
    stay = joined(chain, group, 1)
    post(chain, group, 1, "兼职日结, 加我vx: money888", member=stay.member)
    assert classify_pending() == 1
    assert classify_pending() == 0  # a second sweep: nothing new, nothing decided twice
    post(chain, group, 2, "刷单返利 加V信 money888", member=stay.member)
    classify_pending()
    classify_pending()
    cases = list(ModerationCase.objects.order_by("id").values_list("status", flat=True))
    assert cases == [CaseStatus.WARNED, CaseStatus.REMOVED]
    stay.refresh_from_db()
    assert stay.left_at is not None
    assert "警告后再犯" in stay.left_reason
    audit = list(
        AuditEvent.objects.filter(action__startswith="demand.case_")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert audit == ["demand.case_warned", "demand.case_removed"]
    warned = AuditEvent.objects.get(action="demand.case_warned")
    assert "禁止发布广告" in warned.details["notice"]
    assert AuditEvent.objects.filter(action="groups.member_left").count() == 1


def test_manual_groups_queue_the_case_for_one_click(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a, name="A店团购群")
    stay = joined(chain, group, 1)
    post(chain, group, 1, "代购正品奶粉 www.daigou-shop.cn", member=stay.member)
    post(
        chain, group, 2, "今晚8点秒杀, 链接 https://shop.example.com/m/p/1/", staff=chain.operator_a
    )
    classify_pending()
    case = ModerationCase.objects.get()
    assert case.status == CaseStatus.OPEN  # manual: a person decides
    staff_link = Message.objects.get(platform_msg_id=f"m-{group.pk}-2")
    assert staff_link.label == "chitchat"  # the store's own link is not an ad

    page = client_for(chain.operator_a).get("/messages/").content.decode()
    assert 'id="moderation-queue"' in page
    assert "daigou-shop" in page
    assert client_for(chain.manager_b).get("/messages/").content.decode().count("daigou-shop") == 0
    url = f"/api/demand/moderation/{case.pk}/decision"
    body = json.dumps({"action": "remove"})
    foreign = client_for(chain.manager_b).post(url, body, "application/json")
    assert foreign.status_code == 404
    cashier = client_for(chain.cashier_a).post(url, body, "application/json")
    assert cashier.status_code in (403, 404)
    done = client_for(chain.operator_a).post(url, body, "application/json")
    assert (done.status_code, done.json()["status"]) == (200, "removed")
    again = client_for(chain.operator_a).post(
        url, json.dumps({"action": "warn"}), "application/json"
    )
    assert (again.status_code, again.json()["code"]) == (422, "already_decided")
    assert not GroupMembership.objects.filter(pk=stay.pk, left_at__isnull=True).exists()
    bad = client_for(chain.operator_a).post(url, json.dumps({"action": "ban"}), "application/json")
    assert bad.status_code == 422


def test_a_store_reads_only_its_own_groups_messages(chain: Chain) -> None:
    group_a = make_group(chain.manager_a, chain.store_a, name="A店宝妈群")
    group_b = make_group(chain.manager_b, chain.store_b, name="B店宝妈群")
    post(chain, group_a, 1, "要是有小包装的艾灸贴就好了")
    post(chain, group_b, 1, "B店的鸡蛋很新鲜")
    classify_pending()
    mine = client_for(chain.manager_a).get("/api/demand/messages").json()["items"]
    assert [m["content"] for m in mine] == ["要是有小包装的艾灸贴就好了"]
    assert mine[0]["label"] == "need"
    hq = client_for(chain.hq_operator).get("/api/demand/messages?label=praise").json()["items"]
    assert [m["content"] for m in hq] == ["B店的鸡蛋很新鲜"]
    assert client_for(chain.cashier_a).get("/api/demand/messages").json()["items"] == []
    assert client_for(chain.supplier).get("/api/demand/messages").json()["items"] == []
    filtered = client_for(chain.manager_a).get(f"/api/demand/messages?store_id={chain.store_b.pk}")
    assert filtered.status_code == 404
    assert Client().get("/api/demand/messages").status_code == 401
