"""Console pages: each role sees exactly its scope; phones masked unless permitted."""

from __future__ import annotations

import io
from typing import Any

from django.test import Client

from shequn.groups import actions as group_actions
from shequn.groups.models import GroupMembership
from tests.conftest import client_for, texted_code
from tests.world import World


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


def test_login_required() -> None:
    response = Client().get("/groups/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_store_manager_sees_only_own_store(world: World) -> None:
    client = client_for(world.chain.manager_a)
    for url in ["/", "/stores/", "/groups/", "/members/", "/invitations/", "/rewards/", "/staff/"]:
        html = page(client, url)
        assert "B店专属群" not in html, url
        assert "乙会员" not in html, url
        assert "13900009999" not in html, url
    assert "A店宝妈群" in page(client, "/groups/")
    assert "13900001111" in page(client, "/members/")  # store managers may see phones
    page(client, f"/groups/{world.group_b.pk}/", 404)
    page(client, f"/invitations/{world.invitation_b.pk}/", 404)
    page(client, f"/invitations/{world.invitation_b.pk}/qr.png", 404)
    refused = client.post(f"/invitations/{world.invitation_b.pk}/revoke/", follow=True)
    assert "邀请码不存在" in refused.content.decode()  # the console redirects with a message
    world.invitation_b.refresh_from_db()
    assert world.invitation_b.revoked_at is None


def test_hq_sees_every_store(world: World) -> None:
    html = page(client_for(world.chain.admin), "/groups/")
    assert "A店宝妈群" in html
    assert "B店专属群" in html


def test_operator_sees_masked_phones(world: World) -> None:
    html = page(client_for(world.chain.operator_a), f"/groups/{world.group_a.pk}/")
    assert "139****1111" in html
    assert "13900001111" not in html
    assert "手机号已脱敏" in html


def test_invitation_qr_is_a_png(world: World) -> None:
    response = client_for(world.chain.cashier_a).get(f"/invitations/{world.invitation_a.pk}/qr.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_console_creates_group_and_invitation(world: World) -> None:
    client = client_for(world.chain.manager_a)
    response = client.post(
        "/groups/new/",
        {"store": world.chain.store_a.pk, "name": "后台新建群", "theme": "hobby", "capacity": 300},
    )
    assert response.status_code == 302
    response = client.post("/invitations/", {"kind": "group", "group": world.group_a.pk, "days": 7})
    assert response.status_code == 302
    assert "/invitations/" in response["Location"]


def test_console_refuses_foreign_store_with_message(world: World) -> None:
    client = client_for(world.chain.manager_a)
    response = client.post(
        "/groups/new/",
        {"store": world.chain.store_b.pk, "name": "越权群", "theme": "vip"},
        HTTP_REFERER="/groups/new/",
        follow=True,
    )
    assert "不存在" in response.content.decode()
    assert not world.group_b.store.groups.filter(name="越权群").exists()


def test_public_join_page(world: World) -> None:
    code = group_actions.invitation_code(world.invitation_a)
    client = Client()
    html = page(client, f"/j/{code}/")
    assert "A店" in html
    sent = client.post(f"/j/{code}/", {"phone": "13655556666", "action": "send"})
    assert "验证码已发送" in sent.content.decode()
    response = client.post(
        f"/j/{code}/",
        {
            "phone": "13655556666",
            "name": "扫码顾客",
            "sms_code": texted_code("13655556666"),
            "action": "join",
        },
    )
    assert response.status_code == 200
    assert "加入成功" in response.content.decode()
    assert GroupMembership.objects.filter(
        member__phone="+8613655556666", group=world.group_a
    ).exists()
    bad = client.post(f"/j/{code}/", {"phone": "123", "action": "send"})
    assert bad.status_code == 422
    assert "手机号格式不正确" in bad.content.decode()
    assert page(client, f"/j/{code[:-1]}x/", 422).count("邀请码") >= 1


def page_text(response: Any) -> str:
    """What a person would read: the HTML, or every cell of an Excel download."""
    if response["Content-Type"].startswith("application/vnd.openxmlformats"):
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(response.content))
        return "\n".join(
            str(value)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    return str(response.content.decode())


# Pages that are not scoped data: login/logout, and the public join page (the signed code decides).
UNSCOPED_PAGES = {"login", "logout", "join"}


def test_every_console_page_is_scoped(world: World) -> None:
    """Enumerates the console's URL patterns: with store B's ids every page is a 404 for store A's
    manager, and no page without ids shows anything of B. A new page with an id parameter this
    test does not know fails it."""
    from django.urls import URLPattern, reverse

    from shequn.console.urls import urlpatterns
    from tests.world import B_MARKERS

    b_ids = {
        "group_id": world.group_b.pk,
        "invitation_id": world.invitation_b.pk,
        "order_id": world.order_b.pk,
        "topic_id": world.foreign_topic.pk,
        "proposal_id": world.proposal_b.pk,
        "line_id": world.delivery_b.pk,
    }
    client = client_for(world.chain.manager_a)
    checked = 0
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in UNSCOPED_PAGES:
            continue
        params = list(pattern.pattern.converters)
        unknown = [p for p in params if p not in b_ids]
        assert not unknown, f"console page {pattern.name}: add a store-B id for {unknown}"
        url = reverse(f"console:{pattern.name}", kwargs={p: b_ids[p] for p in params})
        response = client.get(url)
        if params:
            assert response.status_code in (404, 405), url
        else:
            assert response.status_code == 200, url
            html = page_text(response)
            for marker in B_MARKERS:
                assert marker not in html, f"{url} leaked {marker}"
        checked += 1
    assert checked >= 10


def test_pickup_counter_verifies_once_and_lists_today(chain) -> None:  # type: ignore[no-untyped-def]
    from tests.orders.test_pickup import paid_order

    order = paid_order(chain)
    cashier = client_for(chain.cashier_a)
    before = page(cashier, "/pickup/")
    assert order.number in before  # waiting for pickup
    done = cashier.post(
        "/pickup/", {"store": chain.store_a.pk, "code": order.pickup_code}, follow=True
    )
    html = done.content.decode()
    assert "核销成功" in html
    assert order.number in html.split('id="handed-today"')[1]
    again = cashier.post(
        "/pickup/",
        {"store": chain.store_a.pk, "code": order.pickup_code},
        HTTP_REFERER="/pickup/",
        follow=True,
    ).content.decode()
    assert "已于" in again
    assert chain.cashier_a.display_name in again
    page(client_for(chain.hq_operator), "/pickup/", 403)
