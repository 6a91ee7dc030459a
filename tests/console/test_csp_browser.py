"""Under the Content-Security-Policy, a real browser (Debian's chromium via Playwright) reports no
violation on console pages, member pages and the API docs, and what used to be inline script
still works: the console's print button, the share link selected on a tap, the cart's coupon
choice, and the WeChat JSAPI payment handed to WeixinJSBridge."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from shequn.members.models import ChannelIdentity, IdentityChannel, Member
from tests.conftest import PASSWORD, build_chain, make_group, make_sku
from tests.promotions.test_coupons import template_for
from tests.shop.test_group_buy_browser import log_in
from tests.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322d) NetType/WIFI Language/zh_CN"
)
# Inside WeChat the app injects WeixinJSBridge; here a stand-in records the call and answers.
BRIDGE = """
window.WeixinJSBridge = {
  invoke: function (name, params, done) {
    sessionStorage.setItem("bridge", JSON.stringify([name, params.package, params.paySign]));
    done({err_msg: "get_brand_wcpay_request:ok"});
  }
};
window.print = function () { sessionStorage.setItem("printed", "yes"); };
"""


def watch_csp(page: Page) -> list[str]:
    """The browser's CSP reports for this page, as it logs them on the console."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    return violations


def prove_the_watch_works(page: Page, violations: list[str]) -> None:
    """An inline script added now is refused and reported: the watch is live and the header
    is there (without it nothing would be reported and the test would prove nothing)."""
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__inline") is None
    assert any("script-src" in text for text in violations), violations
    violations.clear()


def test_console_pages_run_under_the_policy(browser: Browser, live_server: Any) -> None:
    world = build_world()
    base = str(live_server)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.add_init_script(BRIDGE)
    page = context.new_page()
    violations = watch_csp(page)
    page.goto(f"{base}/login/")
    prove_the_watch_works(page, violations)
    page.fill("input[name=username]", world.chain.manager_a.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    for path in ("/", "/groups/", f"/groups/{world.group_a.pk}/", "/orders/", "/rewards/"):
        response = page.goto(f"{base}{path}")
        assert response is not None, path
        assert response.status == 200, path
    page.goto(f"{base}/invitations/{world.invitation_a.pk}/")
    page.click("button[data-print]")
    assert page.evaluate("() => sessionStorage.getItem('printed')") == "yes"
    page.goto(f"{base}/api/docs")
    page.wait_for_selector(".swagger-ui .information-container", timeout=20_000)
    page.wait_for_timeout(300)
    assert violations == []
    context.close()


def test_member_pages_run_under_the_policy(
    browser: Browser, live_server: Any, gateway: Any
) -> None:
    base = str(live_server)
    chain = build_chain()
    sku = make_sku(chain, code="MOXA-C", price_fen=3990, stock={chain.store_a: 20})
    group = make_group(chain.manager_a, chain.store_a, name="A店安全群")
    template = template_for(chain, name="无门槛3元", discount_fen=300, min_spend_fen=0)
    from shequn.shop.actions import push_product_card

    push_product_card(acting=chain.hq_operator, product=sku.product, group_ids=[group.pk])
    context = browser.new_context(
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
    )
    context.add_init_script(BRIDGE)
    page = context.new_page()
    violations = watch_csp(page)

    page.goto(f"{base}/m/g/{group.pk}/")
    prove_the_watch_works(page, violations)
    page.click(f"a[data-product='{sku.product_id}']")
    page.wait_for_selector("#product-name")
    page.fill("#quantity", "2")
    page.click("#buy-now")
    page.wait_for_url(f"{base}/m/cart/")
    page.goto(f"{base}/m/coupons/")
    page.click(f"[data-template='{template.pk}'] a")
    log_in(page, "13812340021")
    page.wait_for_url(re.compile(r".*/m/coupons/$"))
    page.click(f"[data-template='{template.pk}'] button")
    page.wait_for_selector("[data-coupon]")

    # The product page's own share link: one tap selects all of it.
    page.goto(f"{base}/m/p/{sku.product_id}/")
    page.click("#share-link")
    start, end, length = page.evaluate(
        "() => { const i = document.getElementById('share-link');"
        " return [i.selectionStart, i.selectionEnd, i.value.length]; }"
    )
    assert length > 0
    assert (start, end) == (0, length)

    # The cart's coupon choice reloads the cart with it.
    page.goto(f"{base}/m/cart/")
    assert page.input_value("#coupon-select") != "none"  # the best coupon, chosen by itself
    page.select_option("#coupon-select", "none")
    page.wait_for_url(re.compile(r".*/m/cart/\?coupon=none$"))
    assert page.input_value("#coupon-select") == "none"

    # Inside WeChat with a known openid: the JSAPI page hands the payment to the bridge.
    member = Member.objects.get(phone="+8613812340021")
    ChannelIdentity.objects.create(
        chain=chain.hq, member=member, channel=IdentityChannel.WECHAT_OPENID, value="o-csp-1"
    )
    page.click("#checkout")
    page.wait_for_url(re.compile(r".*/m/orders/\d+/$"))
    order_url = page.url
    page.click("#pay")
    page.wait_for_url(order_url)
    name, package, signature = page.evaluate("() => JSON.parse(sessionStorage.getItem('bridge'))")
    assert name == "getBrandWCPayRequest"
    assert package.startswith("prepay_id=")
    assert signature
    page.wait_for_timeout(300)
    assert violations == []
    context.close()
