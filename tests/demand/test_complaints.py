"""Complaints: labelled → an alert in the feed at once (the sweep that labels it raises it), the
first staff message after it in that group answers it, and each store's response times are
summed up against the 30-minute target — all in the caller's scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shequn.core import timeutil
from shequn.demand.complaints import sla_by_store
from shequn.demand.ingest import MessageRow, epoch_us, store_rows
from shequn.demand.models import Complaint, Message
from shequn.flows.sweeps import run_due_sweeps
from tests.conftest import Chain, client_for, make_group
from tests.referrals.test_commission_lifecycle import member

pytestmark = pytest.mark.django_db
T0 = timeutil.now().replace(microsecond=0) - timedelta(hours=2)


def say(chain: Chain, group: Any, key: str, text: str, at: datetime, *, by: Any) -> None:
    is_staff = hasattr(by, "user_id")
    store_rows(
        [
            MessageRow(
                chain.hq.pk,
                group.pk,
                "wecom",
                key,
                None if is_staff else by.pk,
                by.user_id if is_staff else None,
                "",
                epoch_us(at),
                "text",
                text,
            )
        ]
    )


def test_a_complaint_is_an_alert_after_one_sweep_and_the_next_staff_reply_answers_it(
    chain: Chain,
) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    buyer = member(chain, 1)
    say(
        chain,
        group,
        "early",
        "大家好，今天几点提货",
        T0 - timedelta(minutes=5),
        by=chain.operator_a,
    )
    say(chain, group, "c1", "昨天买的草莓一半是烂的，太失望了", T0, by=buyer)
    run_due_sweeps()
    complaint = Complaint.objects.get()
    received = Message.objects.get(platform_msg_id="c1").created_at
    assert complaint.alerted_at - received < timedelta(minutes=1)
    assert complaint.first_response_at is None  # the earlier staff message is no answer
    say(
        chain,
        group,
        "r1",
        "非常抱歉，马上给您退款",
        T0 + timedelta(minutes=12),
        by=chain.operator_a,
    )
    run_due_sweeps()
    complaint.refresh_from_db()
    assert complaint.response_seconds == 12 * 60
    assert complaint.responder_id == chain.operator_a.user_id
    assert not complaint.overdue
    run_due_sweeps()
    assert Complaint.objects.count() == 1  # once per message


def test_a_reply_imported_before_its_complaint_still_counts(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    say(chain, group, "r1", "抱歉，已经安排换货了", T0 + timedelta(minutes=40), by=chain.operator_a)
    run_due_sweeps()
    say(chain, group, "c1", "送来的鸡蛋碎了好几个，怎么回事", T0, by=member(chain, 1))
    run_due_sweeps()
    complaint = Complaint.objects.get()
    assert complaint.response_seconds == 40 * 60
    assert complaint.overdue  # answered, but past the 30 minutes


def test_sla_per_store_and_the_feed_in_scope(chain: Chain) -> None:
    group_a = make_group(chain.manager_a, chain.store_a, name="A店群")
    group_b = make_group(chain.manager_b, chain.store_b, name="B店群")
    say(chain, group_a, "a1", "买的牛奶过期了，太不负责了", T0, by=member(chain, 1))
    say(
        chain, group_a, "a2", "提货排了半小时没人管", T0 + timedelta(minutes=1), by=member(chain, 2)
    )
    say(chain, group_a, "ar", "抱歉抱歉，马上处理", T0 + timedelta(minutes=10), by=chain.operator_a)
    say(chain, group_b, "b1", "退款申请三天了还没到账", T0, by=member(chain, 3, chain.store_b))
    run_due_sweeps()
    rows = {r.store: r for r in sla_by_store(Complaint.objects.all())}
    a, b = rows[chain.store_a.name], rows[chain.store_b.name]
    assert (a.complaints, a.answered, a.within_sla, a.median_minutes) == (2, 2, 2, 9.5)
    assert (b.complaints, b.answered, b.waiting_past_sla) == (1, 0, 1)

    page_a = client_for(chain.manager_a).get("/complaints/").content.decode()
    assert "牛奶过期" in page_a
    assert "退款申请三天" not in page_a
    page_hq = client_for(chain.hq_operator).get("/complaints/").content.decode()
    assert "退款申请三天" in page_hq
    assert 'id="sla"' in page_hq
    feed = client_for(chain.manager_b).get("/api/demand/complaints?answered=false").json()
    assert [c["content"] for c in feed["items"]] == ["退款申请三天了还没到账"]
    assert feed["items"][0]["overdue"] is True
    sla = client_for(chain.hq_operator).get("/api/demand/complaints/sla").json()
    assert {r["store"] for r in sla} == {chain.store_a.name, chain.store_b.name}
    assert client_for(chain.cashier_a).get("/api/demand/complaints/sla").json() == []
