"""The member's purchase in a real browser (Debian chromium via Playwright, phone-sized): open a
group's product card, order, log in by SMS code, pay on the simulated WeChat Pay cashier, see
the pickup code; then the cashier verifies it at the counter, once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser

from shequn.groups.actions import add_member_by_staff
from shequn.integrations import sms
from shequn.orders.models import Order, OrderStatus
from shequn.shop.actions import push_product_card
from tests.conftest import ARTIFACTS, PASSWORD, build_chain, make_group, make_sku, phone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER_PHONE = "13812345678"


def test_member_buys_from_a_card_pays_and_staff_hands_over(
    browser: Browser, live_server: Any, gateway: Any
) -> None:
    sim, _ = gateway
    base = str(live_server)
    chain = build_chain()
    sku = make_sku(chain, code="MOXA-B", price_fen=3990, stock={chain.store_a: 20})
    group = make_group(chain.manager_a, chain.store_a, name="A店养生群")
    add_member_by_staff(acting=chain.manager_a, group=group, phone=phone(7), role="owner")
    [post] = push_product_card(
        acting=chain.hq_operator, product=sku.product, group_ids=[group.pk], headline="专家同款"
    )
    ARTIFACTS.mkdir(exist_ok=True)

    phone_ctx = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = phone_ctx.new_page()
    page.goto(f"{base}/m/g/{group.pk}/")
    assert "A店养生群" in page.content()
    page.click(f"a[data-product='{sku.product_id}']")
    page.wait_for_selector("#product-name")
    page.fill("#quantity", "2")
    page.click("#buy-now")
    page.wait_for_url(f"{base}/m/cart/")
    assert page.inner_text("#cart-total") == "¥79.80"
    page.click("#checkout")
    page.wait_for_url(re.compile(r".*/m/login/.*"))
    page.fill("#phone", MEMBER_PHONE)
    page.click("#send-code")
    page.wait_for_selector(".msg.success")
    code = re.search(r"\d{6}", sms.last_text_to("+86" + MEMBER_PHONE) or "")
    assert code is not None
    page.fill("#phone", MEMBER_PHONE)
    page.fill("#code", code[0])
    page.click("#login")
    page.wait_for_url(f"{base}/m/cart/")
    page.click("#checkout")
    page.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    assert page.inner_text("#order-status") == "待支付"
    page.screenshot(path=str(ARTIFACTS / "h5-order-unpaid.png"), full_page=True)

    page.click("#pay")  # → the simulated WeChat Pay cashier (another origin), then back
    page.wait_for_selector("#sim-amount")
    assert page.inner_text("#sim-amount") == "¥79.80"
    page.click("#sim-pay")
    page.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    assert page.inner_text("#order-status") == "已支付"
    shown = page.inner_text("#pickup-code")
    assert re.fullmatch(r"\d{8}", shown)
    assert page.locator("#pickup-qr svg").count() == 1
    page.screenshot(path=str(ARTIFACTS / "h5-pickup-code.png"), full_page=True)

    order = Order.objects.get()
    assert (order.status, order.pickup_code, order.total_fen) == (OrderStatus.PAID, shown, 7980)
    assert (order.source_group_id, order.content_ref) == (group.pk, post.content_ref)
    assert order.sharer_id == post.sharer_id
    assert sim.transactions[order.number]["trade_state"] == "SUCCESS"

    counter = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    counter.goto(f"{base}/login/")
    counter.fill("input[name=username]", chain.cashier_a.user.username)
    counter.fill("input[name=password]", PASSWORD)
    counter.click("button[type=submit]")
    counter.wait_for_url(f"{base}/")
    counter.goto(f"{base}/pickup/")
    counter.fill("#pickup-form input[name=code]", shown)
    counter.click("#pickup-form button[type=submit]")
    counter.wait_for_selector(".msg.success")
    assert order.number in counter.inner_text(".msg.success")
    assert order.number in counter.inner_text("#handed-today")
    counter.fill("#pickup-form input[name=code]", shown)  # the same code again
    counter.click("#pickup-form button[type=submit]")
    counter.wait_for_selector(".msg.error")
    refused = counter.inner_text(".msg.error")
    assert "已于" in refused
    assert chain.cashier_a.display_name in refused
    counter.screenshot(path=str(ARTIFACTS / "console-pickup-second-scan.png"), full_page=True)

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    page.reload()
    assert page.inner_text("#order-status") == "已完成"
    phone_ctx.close()
    counter.close()
