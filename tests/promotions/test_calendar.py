"""The weekly calendar: a schedule (Mon/Wed/Fri 10:00) becomes real flash sales or group-buys
for the next seven days, each day once, announced in the chosen groups; the week grid shows
what was made and what is planned."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connections

from shequn.core import timeutil
from shequn.core.errors import InvalidInput, NotFound, PermissionDenied
from shequn.org.models import Staff
from shequn.promotions.calendar import (
    create_schedule,
    materialize_schedules,
    stop_schedule,
    week_calendar,
)
from shequn.promotions.models import (
    FlashSale,
    GroupBuy,
    PromotionSchedule,
    ScheduledRun,
)
from shequn.shop.models import GroupPost
from tests.conftest import Chain, build_chain, make_group, make_sku

pytestmark = pytest.mark.django_db
MON_WED_FRI = (1, 3, 5)


def schedule_for(chain: Chain, sku: Any, **overrides: Any) -> PromotionSchedule:
    params: dict[str, Any] = {
        "acting": chain.hq_operator,
        "name": "艾草贴会员日秒杀",
        "kind": "flash_sale",
        "sku": sku,
        "price_fen": 1990,
        "weekdays": MON_WED_FRI,
        "start_time": time(10, 0),
        "duration_minutes": 120,
        "per_member_limit": 2,
        "per_order_limit": 2,
        "chain_quota": 300,
    }
    params.update(overrides)
    return create_schedule(**params)


def expected_days(now: datetime, weekdays: tuple[int, ...], at: time, minutes: int) -> list[date]:
    today = timeutil.to_local(now).date()
    days = [today + timedelta(days=n) for n in range(7)]
    return [
        d
        for d in days
        if d.isoweekday() in weekdays
        and datetime.combine(d, at, tzinfo=timeutil.SHANGHAI) + timedelta(minutes=minutes) > now
    ]


def test_mon_wed_fri_become_flash_sales_once_each_and_cards_in_the_groups(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 500})
    group = make_group(chain.manager_a, chain.store_a, name="A店会员日群")
    schedule = schedule_for(chain, sku, group_ids=[group.pk])
    now = timeutil.now()
    days = expected_days(now, MON_WED_FRI, time(10, 0), 120)
    assert materialize_schedules(now=now) == len(days)
    assert materialize_schedules(now=now) == 0  # a second sweep makes nothing
    runs = list(ScheduledRun.objects.filter(schedule=schedule).select_related("flash_sale"))
    assert [run.run_date for run in runs] == days
    for run in runs:
        sale = run.flash_sale
        assert sale is not None
        local = timeutil.to_local(sale.starts_at)
        assert (local.date(), local.hour, local.minute) == (run.run_date, 10, 0)
        assert sale.ends_at - sale.starts_at == timedelta(hours=2)
        assert (sale.price_fen, sale.quotas.get().quota) == (1990, 300)
        assert "周" in sale.name
    assert GroupPost.objects.filter(group=group, product=sku.product).count() == len(days)


def test_group_buy_schedule_and_the_week_grid(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 500})
    schedule = schedule_for(
        chain,
        sku,
        name="周末三人团",
        kind="group_buy",
        weekdays=(6, 7),
        start_time=time(9, 30),
        duration_minutes=600,
        chain_quota=None,
        team_size=3,
        team_minutes=120,
    )
    now = timeutil.now()
    made = materialize_schedules(now=now)
    assert made == len(expected_days(now, (6, 7), time(9, 30), 600))
    assert GroupBuy.objects.filter(team_size=3).count() == made
    this_week = week_calendar(chain.hq_operator, timeutil.to_local(now).date())
    assert [day.label for day in this_week] == [
        "周一",
        "周二",
        "周三",
        "周四",
        "周五",
        "周六",
        "周日",
    ]
    weekend = [entry for day in this_week[5:] for entry in day.entries]
    assert all(entry.kind == "group_buy" for entry in weekend)
    assert all(entry.schedule_id == schedule.pk for entry in weekend)
    in_two_weeks = week_calendar(chain.hq_operator, timeutil.to_local(now).date() + timedelta(14))
    planned = [entry for day in in_two_weeks for entry in day.entries]
    assert [entry.state for entry in planned] == ["planned", "planned"]
    assert [timeutil.to_local(e.starts_at).strftime("%H:%M") for e in planned] == ["09:30"] * 2
    stop_schedule(acting=chain.hq_operator, schedule=schedule)
    later = week_calendar(chain.hq_operator, timeutil.to_local(now).date() + timedelta(14))
    assert [entry for day in later for entry in day.entries] == []


def test_a_creator_who_lost_the_permission_makes_nothing_and_it_is_said_once(
    chain: Chain,
) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 500})
    schedule = schedule_for(chain, sku, weekdays=(1, 2, 3, 4, 5, 6, 7), start_time=time(23, 59))
    Staff.objects.filter(pk=chain.hq_operator.pk).update(role="cashier")
    assert materialize_schedules() == 0
    skipped = ScheduledRun.objects.filter(schedule=schedule)
    assert skipped.count() >= 6
    assert all("无此权限" in run.skipped_reason for run in skipped)
    assert materialize_schedules() == 0
    assert not FlashSale.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"weekdays": ()}, InvalidInput),
        ({"weekdays": (0, 1)}, InvalidInput),
        ({"weekdays": (8,)}, InvalidInput),
        ({"weekdays": "135"}, InvalidInput),
        ({"start_time": "10:00"}, InvalidInput),
        ({"duration_minutes": 0}, InvalidInput),
        ({"duration_minutes": 10**6}, InvalidInput),
        ({"price_fen": 3990}, InvalidInput),
        ({"price_fen": -5}, InvalidInput),
        ({"chain_quota": None}, InvalidInput),
        ({"kind": "group_buy"}, InvalidInput),  # no team size, and a quota given
        ({"kind": "lottery"}, InvalidInput),
        ({"group_ids": [10**9]}, NotFound),
        ({"acting": "manager"}, PermissionDenied),
    ],
)
def test_bad_schedules_are_refused(chain: Chain, overrides: dict[str, Any], error: type) -> None:
    sku = make_sku(chain, price_fen=3990)
    if overrides.get("acting") == "manager":
        overrides["acting"] = chain.manager_a
    with pytest.raises(error):
        schedule_for(chain, sku, **overrides)
    assert not PromotionSchedule.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_make_each_day_once() -> None:
    chain = build_chain()
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 500})
    schedule_for(chain, sku, weekdays=(1, 2, 3, 4, 5, 6, 7), start_time=time(23, 59))

    def sweep(_: int) -> int:
        try:
            return materialize_schedules()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        made = sum(pool.map(sweep, range(2)))
    runs = ScheduledRun.objects.count()
    assert made == runs == FlashSale.objects.count()
    assert runs in (6, 7)  # today's 23:59 may or may not have passed


def test_schedule_and_calendar_api(chain: Chain) -> None:
    import json

    from tests.conftest import client_for

    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    body = {
        "name": "周三秒杀",
        "kind": "flash_sale",
        "sku_id": sku.pk,
        "price_fen": 1990,
        "weekdays": [3],
        "start_time": "10:00",
        "duration_minutes": 120,
        "per_member_limit": 1,
        "per_order_limit": 1,
        "chain_quota": 100,
    }
    client = client_for(chain.hq_operator)
    created = client.post("/api/promotions/schedules", json.dumps(body), "application/json")
    assert created.status_code == 201, created.content
    assert (created.json()["weekdays"], created.json()["start_time"]) == ([3], "10:00:00")
    for bad in ({"weekdays": [9]}, {"start_time": "25:00"}, {"price_fen": 0}, {"kind": "x"}):
        refused = client.post(
            "/api/promotions/schedules", json.dumps({**body, **bad}), "application/json"
        )
        assert refused.status_code == 422, (bad, refused.content)
        assert {"code", "message"} <= set(refused.json())
    assert PromotionSchedule.objects.count() == 1
    week_of = (timeutil.to_local(timeutil.now()).date() + timedelta(days=14)).isoformat()
    grid = client_for(chain.manager_a).get("/api/promotions/calendar", {"week_of": week_of})
    assert grid.status_code == 200
    days = grid.json()
    assert [len(day["entries"]) for day in days] == [0, 0, 1, 0, 0, 0, 0]
    assert days[2]["entries"][0]["state"] == "planned"
    stopped = client.post(
        f"/api/promotions/schedules/{created.json()['id']}/stop", "{}", "application/json"
    )
    assert stopped.json()["stopped_at"] is not None


def test_console_week_grid(chain: Chain) -> None:
    from tests.conftest import client_for

    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 50})
    schedule_for(chain, sku)
    materialize_schedules()
    first = ScheduledRun.objects.order_by("run_date").first()
    assert first is not None
    page = client_for(chain.manager_a).get(
        "/promotions/calendar/", {"week": first.run_date.isoformat()}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("data-day=") == 7
    assert "周一、周三、周五" in html
    assert "秒杀 · ¥19.90" in html
    later = client_for(chain.manager_a).get("/promotions/calendar/", {"week": "2099-01-05"})
    assert "计划中" in later.content.decode()
    bad = client_for(chain.manager_a).get("/promotions/calendar/", {"week": "next"})
    assert bad.status_code == 422
