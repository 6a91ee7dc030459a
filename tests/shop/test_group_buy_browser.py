"""A group-buy in a real browser (Debian chromium via Playwright, phone-sized): member A opens
the group's 拼团, starts a team of 2 and pays on the simulated WeChat Pay cashier; the order
shows the team waiting and no pickup code yet. Member B opens A's share link in another phone,
logs in, joins and pays; the team fills, and both see paid orders with pickup codes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from shequn.core import timeutil
from shequn.integrations import sms
from shequn.orders.models import Order, OrderStatus
from shequn.promotions.actions import create_group_buy
from shequn.promotions.models import GroupBuyTeam, TeamStatus
from tests.conftest import ARTIFACTS, build_chain, make_group, make_sku

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def phone_page(browser: Browser) -> Page:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    return context.new_page()


def log_in(page: Page, number: str) -> None:
    page.wait_for_url(re.compile(r".*/m/login/.*"))
    page.fill("#phone", number)
    page.click("#send-code")
    page.wait_for_selector(".msg.success")
    code = re.search(r"\d{6}", sms.last_text_to("+86" + number) or "")
    assert code is not None
    page.fill("#phone", number)
    page.fill("#code", code[0])
    page.click("#login")


def pay_at_cashier(page: Page, amount: str) -> None:
    page.click("#pay")
    page.wait_for_selector("#sim-amount")
    assert page.inner_text("#sim-amount") == amount
    page.click("#sim-pay")
    page.wait_for_url(re.compile(r".*/m/orders/\d+/$"))


def test_two_members_fill_a_team_through_the_share_link(
    browser: Browser, live_server: Any, gateway: Any
) -> None:
    base = str(live_server)
    chain = build_chain()
    sku = make_sku(chain, code="MOXA-T", price_fen=3990, stock={chain.store_a: 20})
    group = make_group(chain.manager_a, chain.store_a, name="A店拼团群")
    now = timeutil.now()
    campaign = create_group_buy(
        acting=chain.hq_operator,
        sku=sku,
        name="艾草贴两人团",
        price_fen=2990,
        team_size=2,
        team_minutes=30,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=1),
        per_member_limit=2,
        per_order_limit=2,
    )
    ARTIFACTS.mkdir(exist_ok=True)

    a = phone_page(browser)
    a.goto(f"{base}/m/g/{group.pk}/")
    a.click(f"a[data-group-buy='{campaign.pk}']")
    a.wait_for_selector("#campaign-name")
    assert a.inner_text("#team-price") == "¥29.90"
    assert re.fullmatch(
        r"\d{2}:\d{2}:\d{2}|1天 \d{2}:\d{2}:\d{2}", a.inner_text("#campaign-countdown")
    )
    a.click("#start-team")
    log_in(a, "13812340001")
    a.wait_for_url(re.compile(rf".*/m/tuan/{campaign.pk}/$"))  # back where the tap came from
    a.click("#start-team")
    a.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    pay_at_cashier(a, "¥29.90")
    assert a.inner_text("#order-status") == "已支付"
    assert a.inner_text("#seat-status") == "拼团中"
    assert a.locator("#pickup-code").count() == 0  # not before the team has formed
    a.click("#open-team")
    a.wait_for_selector("#team-share-link")
    share = a.input_value("#team-share-link")
    assert a.inner_text("#team-missing") == "1"
    a.screenshot(path=str(ARTIFACTS / "h5-team-waiting.png"), full_page=True)

    b = phone_page(browser)
    b.goto(share)
    assert b.inner_text("#team-status") == "拼团中"
    b.click("#join-team")
    log_in(b, "13812340002")
    b.wait_for_url(share)
    b.click("#join-team")
    b.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    pay_at_cashier(b, "¥29.90")
    assert b.inner_text("#order-status") == "已支付"
    assert b.inner_text("#seat-status") == "已成团"
    code_b = b.inner_text("#pickup-code")
    assert re.fullmatch(r"\d{8}", code_b)
    b.screenshot(path=str(ARTIFACTS / "h5-team-filled.png"), full_page=True)

    a.go_back()
    a.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    a.reload()
    assert a.inner_text("#seat-status") == "已成团"
    code_a = a.inner_text("#pickup-code")
    assert re.fullmatch(r"\d{8}", code_a)
    assert code_a != code_b

    team = GroupBuyTeam.objects.get()
    assert (team.joined, team.size, team.status) == (2, 2, TeamStatus.SUCCEEDED)
    orders = Order.objects.order_by("id")
    assert [o.status for o in orders] == [OrderStatus.PAID, OrderStatus.PAID]
    assert {o.pickup_code for o in orders} == {code_a, code_b}
    assert [o.total_fen for o in orders] == [2990, 2990]
    a.context.close()
    b.context.close()
