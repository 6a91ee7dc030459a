"""Member pages through the Django test client: card push → feed → product → cart → login by
SMS code → order with its source recorded; and what a member must not be able to do."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from shequn.core.errors import NotFound, PermissionDenied
from shequn.groups.actions import add_member_by_staff
from shequn.integrations import sms
from shequn.members.models import LoginCode
from shequn.orders.models import Order, OrderStatus
from shequn.shop.actions import push_product_card
from shequn.shop.models import GroupPost
from tests.conftest import Chain, make_group, make_sku, phone
from tests.orders.test_pickup import pay

pytestmark = pytest.mark.django_db


def log_in(client: Client, number: str, next_url: str = "/m/orders/") -> Any:
    client.post("/m/login/", {"action": "send", "phone": number, "next": next_url})
    text = sms.last_text_to(number)
    assert text is not None
    code = re.search(r"\d{6}", text)[0]  # type: ignore[index]
    return client.post(
        "/m/login/", {"action": "login", "phone": number, "code": code, "next": next_url}
    )


@pytest.fixture
def pushed(chain: Chain) -> tuple[GroupPost, Any]:
    sku = make_sku(chain, code="MOXA-1", price_fen=3990, stock={chain.store_a: 5})
    group = make_group(chain.manager_a, chain.store_a)
    owner = add_member_by_staff(
        acting=chain.manager_a, group=group, phone=phone(100), role="owner"
    ).member
    [post] = push_product_card(
        acting=chain.hq_operator, product=sku.product, group_ids=[group.pk], headline="艾灸季"
    )
    assert post.sharer == owner
    return post, sku


def test_card_to_order_records_group_sharer_content_and_channel(pushed, chain: Chain) -> None:  # type: ignore[no-untyped-def]
    post, sku = pushed
    client = Client()
    feed = client.get(f"/m/g/{post.group_id}/")
    assert feed.status_code == 200
    link = re.search(r'href="(/m/p/\d+/\?[^"]+)"', feed.content.decode())[1].replace("&amp;", "&")  # type: ignore[index]
    page = client.get(link)
    assert "艾草贴" in page.content.decode()
    assert "¥39.90" in page.content.decode()
    client.post(link, {"sku": sku.pk, "quantity": "2", "action": "buy"})
    cart = client.get("/m/cart/").content.decode()
    assert "¥79.80" in cart
    key = re.search(r'name="idempotency_key" value="(\w+)"', cart)[1]  # type: ignore[index]
    assert client.post("/m/checkout/", {"idempotency_key": key}).status_code == 302  # login first
    log_in(client, phone(1))
    response = client.post("/m/checkout/", {"idempotency_key": key, "fulfilment": "pickup"})
    order = Order.objects.get()
    assert response["Location"] == f"/m/orders/{order.number}/"
    assert (order.total_fen, order.status) == (7980, OrderStatus.PENDING_PAYMENT)
    assert order.source_group_id == post.group_id
    assert order.sharer == post.sharer
    assert order.content_ref == f"post-{post.pk}"
    assert order.channel == "group_share"
    again = client.post("/m/checkout/", {"idempotency_key": key})  # a double tap
    assert again["Location"] == f"/m/orders/{order.number}/"
    assert Order.objects.count() == 1
    detail = client.get(f"/m/orders/{order.number}/").content.decode()
    assert "待支付" in detail
    assert "微信支付 ¥79.80" in detail


def test_tampered_link_shows_the_product_without_its_source(pushed) -> None:  # type: ignore[no-untyped-def]
    post, sku = pushed
    client = Client()
    feed = client.get(f"/m/g/{post.group_id}/").content.decode()
    link = re.search(r'href="(/m/p/\d+/\?[^"]+)"', feed)[1].replace("&amp;", "&")  # type: ignore[index]
    forged = re.sub(r"s=\d+", "s=999", link)
    assert client.get(forged).status_code == 200
    client.post(forged, {"sku": sku.pk, "quantity": "1", "action": "buy"})
    log_in(client, phone(2))
    key = re.search(r'idempotency_key" value="(\w+)"', client.get("/m/cart/").content.decode())[1]  # type: ignore[index]
    client.post("/m/checkout/", {"idempotency_key": key})
    order = Order.objects.get()
    assert order.sharer is None
    assert order.channel == "organic"


def test_a_member_sees_only_their_own_orders(pushed, chain: Chain) -> None:  # type: ignore[no-untyped-def]
    post, sku = pushed
    alice, bob = Client(), Client()
    for client, n in ((alice, 3), (bob, 4)):
        client.get(f"/m/g/{post.group_id}/")
        log_in(client, phone(n))
    link = f"/m/p/{sku.product_id}/"
    alice.post(link, {"sku": sku.pk, "quantity": "1", "action": "buy"})
    key = re.search(r'idempotency_key" value="(\w+)"', alice.get("/m/cart/").content.decode())[1]  # type: ignore[index]
    alice.post("/m/checkout/", {"idempotency_key": key})
    order = Order.objects.get()
    assert alice.get(f"/m/orders/{order.number}/").status_code == 200
    assert bob.get(f"/m/orders/{order.number}/").status_code == 404
    assert order.number not in bob.get("/m/orders/").content.decode()
    assert bob.post(f"/m/orders/{order.number}/cancel/").status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT  # bob's cancel changed nothing
    assert Client().get("/m/orders/").status_code == 302  # not logged in: to the login page


def test_member_refunds_before_pickup(pushed, chain: Chain, wechatpay: Any) -> None:  # type: ignore[no-untyped-def]
    post, sku = pushed
    client = Client()
    client.get(f"/m/g/{post.group_id}/")
    log_in(client, phone(5))
    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "1", "action": "buy"})
    key = re.search(r'idempotency_key" value="(\w+)"', client.get("/m/cart/").content.decode())[1]  # type: ignore[index]
    client.post("/m/checkout/", {"idempotency_key": key})
    order = Order.objects.get()
    assert pay(order, "4200-shop") == "paid"
    page = client.get(f"/m/orders/{order.number}/").content.decode()
    order.refresh_from_db()
    assert order.pickup_code in page
    assert "<svg" in page  # the QR
    client.post(f"/m/orders/{order.number}/refund/", {"reason": "买重了"})
    client.post(f"/m/orders/{order.number}/refund/", {"reason": "买重了"})  # twice
    assert order.refunds.count() == 1
    assert order.refunds.get().amount_fen == 3990


def test_login_codes_resist_guessing_and_spamming(pushed) -> None:  # type: ignore[no-untyped-def]
    post, _ = pushed
    client = Client()
    client.get(f"/m/g/{post.group_id}/")
    client.post("/m/login/", {"action": "send", "phone": phone(6)})
    again = client.post("/m/login/", {"action": "send", "phone": phone(6)})
    assert again.status_code == 429  # asked too often
    assert "60 秒" in again.content.decode()
    assert LoginCode.objects.count() == 1
    for _ in range(5):
        wrong = client.post("/m/login/", {"action": "login", "phone": phone(6), "code": "000000"})
        assert wrong.status_code in (422,)
    real = re.search(r"\d{6}", sms.last_text_to(phone(6)) or "")[0]  # type: ignore[index]
    locked = client.post("/m/login/", {"action": "login", "phone": phone(6), "code": real})
    assert "重新获取" in locked.content.decode()  # five wrong guesses burn the code
    assert client.get("/m/orders/").status_code == 302
    bad = client.post("/m/login/", {"action": "send", "phone": "12345"})
    assert bad.status_code == 422


def test_push_is_scoped_and_permissioned(chain: Chain) -> None:
    sku = make_sku(chain)
    group_b = make_group(chain.manager_b, chain.store_b)
    with pytest.raises(NotFound):
        push_product_card(acting=chain.manager_a, product=sku.product, group_ids=[group_b.pk])
    with pytest.raises(PermissionDenied):
        push_product_card(acting=chain.cashier_b, product=sku.product, group_ids=[group_b.pk])
    assert not GroupPost.objects.exists()
    [post] = push_product_card(acting=chain.manager_b, product=sku.product, group_ids=[group_b.pk])
    assert post.sharer is None  # no member-owner: the card credits nobody


def test_member_refund_racing_a_pickup_is_refused(pushed, chain: Chain) -> None:  # type: ignore[no-untyped-def]
    from shequn.orders.actions import request_member_refund, verify_pickup

    post, sku = pushed
    client = Client()
    client.get(f"/m/g/{post.group_id}/")
    log_in(client, phone(8))
    client.post(f"/m/p/{sku.product_id}/", {"sku": sku.pk, "quantity": "1", "action": "buy"})
    key = re.search(r'idempotency_key" value="(\w+)"', client.get("/m/cart/").content.decode())[1]  # type: ignore[index]
    client.post("/m/checkout/", {"idempotency_key": key})
    order = Order.objects.get()
    pay(order, "4200-race")
    stale = Order.objects.get(pk=order.pk)  # the member's page read it as paid
    verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=stale.pickup_code)
    with pytest.raises(Exception) as info:
        request_member_refund(member=stale.member, order=stale, reason="不要了")
    assert getattr(info.value, "code", "") == "order_changed"
    assert not order.refunds.exists()


@pytest.mark.parametrize(
    "form",
    [
        {"sku": "abc", "quantity": "1"},
        {"sku": "", "quantity": "1"},
        {"sku": "99999999999999999999", "quantity": "1"},
        {"sku": "1", "quantity": "²"},
        {"sku": "1", "quantity": "-3"},
    ],
)
def test_bad_cart_input_is_a_message_not_a_crash(pushed, form: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    post, sku = pushed
    client = Client()
    client.get(f"/m/g/{post.group_id}/")
    form = {**form, "sku": str(sku.pk) if form["sku"] == "1" else form["sku"]}
    assert client.post(f"/m/p/{sku.product_id}/", {**form, "action": "cart"}).status_code == 302
    assert client.post("/m/cart/", form).status_code == 302
    cart = client.get("/m/cart/")
    assert cart.status_code == 200
    assert "购物车是空的" in cart.content.decode()  # nothing got in
