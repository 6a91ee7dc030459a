"""The demand river's closed loop in a real browser (Debian chromium via Playwright): HQ sees
the topic on the demand board; the supplier drafts a reverse-customization proposal from it; HQ
publishes it to the groups that asked; a member of one of them opens it from the group page on a
phone, pre-orders with the deposit and pays on the simulated WeChat Pay cashier. Past the
deadline the sweep decides: the member's order page shows the pre-order converted, with its
pickup code and the balance due at the store."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from shequn.core import timeutil
from shequn.demand.models import PreOrder, PreOrderStatus, ProductionOrder, Proposal
from shequn.demand.proposals import sweep_proposals
from shequn.orders.models import Order, OrderStatus
from shequn.org.models import Staff
from tests.conftest import ARTIFACTS, PASSWORD, build_chain
from tests.demand.test_proposals import make_c2b
from tests.shop.test_group_buy_browser import log_in, pay_at_cashier, phone_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def console(browser: Browser, base: str, staff: Staff) -> Page:
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", staff.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def test_hq_sees_the_topic_supplier_proposes_member_pre_orders(
    browser: Browser, live_server: Any, gateway: Any
) -> None:
    base = str(live_server)
    chain = build_chain()
    c2b = make_c2b(chain)
    topic = c2b["topic"]
    ARTIFACTS.mkdir(exist_ok=True)

    hq = console(browser, base, chain.hq_operator)
    hq.goto(f"{base}/demand/")
    card = hq.locator(f".topic[data-topic='{topic.pk}']")
    assert card.locator(".topic-title").inner_text() == topic.title
    assert card.locator(".topic-members").inner_text() == "2"
    hq.screenshot(path=str(ARTIFACTS / "console-demand-board.png"), full_page=True)

    supplier = console(browser, base, chain.supplier)
    supplier.goto(f"{base}/demand/")
    supplier.click(f"a[data-propose='{topic.pk}']")
    supplier.wait_for_selector("#propose-form")
    supplier.fill("#title", "艾草暖宫贴 旅行装")
    supplier.fill("#spec", "3贴/盒")
    supplier.fill("#description", "应群友要求做小包装, 出差带着方便")
    supplier.fill("#target-price", "19.90")
    supplier.fill("#deposit", "5")
    supplier.fill("#min-units", "2")
    supplier.click("#save-proposal")
    supplier.wait_for_url(re.compile(r".*/proposals/\d+/$"))
    assert supplier.inner_text("#proposal-status") == "草稿"
    proposal = Proposal.objects.get()
    assert (proposal.supplier, proposal.target_price_fen, proposal.deposit_fen) == (
        c2b["maker"],
        1990,
        500,
    )

    hq.goto(f"{base}/proposals/{proposal.pk}/")
    assert hq.inner_text("#publish") == "发布到 2 个来源社群"
    hq.click("#publish")
    hq.wait_for_selector("#proposal-status")
    assert hq.inner_text("#proposal-status") == "预订中"

    alice = c2b["people"][0]
    member = phone_page(browser)
    member.goto(f"{base}/m/g/{c2b['group_a'].pk}/")
    member.click(f"a[data-proposal='{proposal.pk}']")
    member.wait_for_selector("#proposal-title")
    assert member.inner_text("#proposal-deposit") == "¥5.00"
    assert member.inner_text("#proposal-missing") == "2"
    member.fill("#quantity", "2")
    member.click("#preorder")
    log_in(member, alice.phone.removeprefix("+86"))
    member.wait_for_url(re.compile(rf".*/m/c2b/{proposal.pk}/$"))
    member.fill("#quantity", "2")
    member.click("#preorder")
    member.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    assert member.inner_text("#order-balance") == "¥29.80"
    pay_at_cashier(member, "¥10.00")
    assert member.inner_text("#order-status") == "已支付"
    assert member.inner_text("#preorder-status") == "已预订"
    assert member.locator("#pickup-code").count() == 0  # not before the proposal succeeds
    member.screenshot(path=str(ARTIFACTS / "h5-preorder-paid.png"), full_page=True)

    Proposal.objects.filter(pk=proposal.pk).update(deadline=timeutil.now() - timedelta(seconds=1))
    assert sweep_proposals() == 1
    member.reload()
    assert member.inner_text("#preorder-status") == "已转订单"
    assert re.fullmatch(r"\d{8}", member.inner_text("#pickup-code"))
    order = Order.objects.get()
    assert (order.status, order.total_fen, order.balance_due_fen) == (OrderStatus.PAID, 1000, 2980)
    assert PreOrder.objects.get().status == PreOrderStatus.CONVERTED
    assert ProductionOrder.objects.get().total_units == 2

    supplier.goto(f"{base}/proposals/{proposal.pk}/")
    assert supplier.inner_text("#proposal-status") == "已达成"
    assert "合计" in supplier.inner_text("#production")
    supplier.screenshot(path=str(ARTIFACTS / "console-proposal-succeeded.png"), full_page=True)
    for page in (hq, supplier, member):
        page.context.close()
