"""A sharer in a real browser (Debian chromium via Playwright, phone-sized): they open their
page and copy a share link; a member opens it on another phone, buys and pays on the simulated
WeChat Pay cashier; the sharer reloads and sees the pending commission."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser

from shequn.referrals.actions import decide_sharer, set_commission_rule
from shequn.referrals.models import OrderCommission
from tests.conftest import ARTIFACTS, build_chain, make_group, make_sku
from tests.shop.test_group_buy_browser import log_in, pay_at_cashier, phone_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_sharer_copies_a_link_a_member_buys_the_sharer_sees_it(
    browser: Browser, live_server: Any, gateway: Any
) -> None:
    base = str(live_server)
    chain = build_chain()
    sku = make_sku(chain, code="MOXA-S", price_fen=3990, stock={chain.store_a: 20})
    group = make_group(chain.manager_a, chain.store_a, name="A店推客群")
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])  # 10 %
    ARTIFACTS.mkdir(exist_ok=True)

    sharer = phone_page(browser)
    sharer.goto(f"{base}/m/g/{group.pk}/")
    sharer.goto(f"{base}/m/sharer/")
    log_in(sharer, "13812340011")
    sharer.wait_for_selector("#apply-sharer")
    sharer.click("#apply-sharer")
    sharer.wait_for_selector(".msg.success")
    from shequn.referrals.models import Sharer

    decide_sharer(acting=chain.manager_a, sharer=Sharer.objects.get(), approve=True)
    sharer.reload()
    card = sharer.locator(f".share-card[data-kind='product'][data-target='{sku.product_id}']")
    link = card.locator(".share-link").input_value()
    poster = card.locator(".poster-link").get_attribute("href")
    png = sharer.request.get(f"{base}{poster}")
    assert png.ok
    assert png.headers["content-type"] == "image/png"
    assert sharer.inner_text("#earn-pending") == "¥0.00"

    buyer = phone_page(browser)
    buyer.goto(link)
    buyer.wait_for_selector("#product-name")
    buyer.fill("#quantity", "2")
    buyer.click("#buy-now")
    buyer.wait_for_url(f"{base}/m/cart/")
    buyer.click("#checkout")
    log_in(buyer, "13812340012")
    buyer.wait_for_url(f"{base}/m/cart/")
    buyer.click("#checkout")
    buyer.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    pay_at_cashier(buyer, "¥79.80")
    assert buyer.inner_text("#order-status") == "已支付"

    sharer.reload()
    assert sharer.inner_text("#earn-pending") == "¥7.98"
    assert sharer.locator(".commission-row").first.inner_text() == "¥7.98"
    sharer.screenshot(path=str(ARTIFACTS / "h5-sharer-pending.png"), full_page=True)
    row = OrderCommission.objects.get()
    assert (row.accrued_fen, row.level, row.member_id) == (798, 1, Sharer.objects.get().member_id)
    sharer.context.close()
    buyer.context.close()
