"""A real browser (Debian's chromium, driven by Playwright) logs in as a store manager and sees
only that store's groups; then a customer joins through the QR page on a phone-sized screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from shequn.groups import actions as group_actions
from tests.conftest import ARTIFACTS, PASSWORD, texted_code
from tests.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_store_manager_sees_only_own_groups(browser: Browser, live_server: object) -> None:
    world = build_world()
    base = str(live_server)
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", world.chain.manager_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "概览" in page.content()
    page.goto(f"{base}/groups/")
    rows = page.locator("tr.group-row")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "A店宝妈群"
    assert page.locator("td.store-name").all_inner_texts() == ["A店"]
    assert "B店专属群" not in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-groups-store-manager.png"), full_page=True)
    response = page.goto(f"{base}/groups/{world.group_b.pk}/")
    assert response is not None
    assert response.status == 404
    page.close()


def test_customer_joins_through_qr_page_on_a_phone(browser: Browser, live_server: object) -> None:
    world = build_world()
    code = group_actions.invitation_code(world.invitation_a)
    page = browser.new_page(locale="zh-CN", viewport={"width": 375, "height": 812})
    page.goto(f"{live_server}/j/{code}/")
    page.fill("input[name=phone]", "123")
    page.click("button[value=send]")
    assert "手机号格式不正确" in page.locator("#join-error").inner_text()
    page.fill("input[name=phone]", "13655557777")
    page.fill("input[name=name]", "张阿姨")
    page.click("button[value=send]")
    assert "验证码已发送" in page.locator("#code-sent").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "join-code-step-375.png"), full_page=True)
    page.fill("input[name=sms_code]", "000000" if texted_code("13655557777") != "000000" else "1")
    page.click("button[value=join]")
    assert "验证码不正确" in page.locator("#join-error").inner_text()
    page.fill("input[name=sms_code]", texted_code("13655557777"))
    assert page.input_value("input[name=name]") == "张阿姨"  # kept across the error
    page.click("button[value=join]")
    assert "加入成功" in page.locator("#joined").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "join-page-375.png"), full_page=True)
    world.group_a.refresh_from_db()
    assert world.group_a.member_count == 2
    page.close()
