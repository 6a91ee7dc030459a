"""Shared fixtures: a small two-region chain built through the real actions."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connections
from django.test import Client

from shequn.catalog.models import Sku, Supplier
from shequn.core.dbguards import install_append_only_guards, remove_append_only_guards
from shequn.core.phones import normalize_phone
from shequn.groups import actions as group_actions
from shequn.groups.models import CustomerGroup, GroupTheme, Invitation, InvitationKind
from shequn.integrations import sms
from shequn.members.actions import PhoneProof
from shequn.org import actions as org_actions
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Role

if TYPE_CHECKING:
    from tests.world import World

PASSWORD = "Test-pass-2026!"
_codes = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_flash_facts() -> None:
    """Each test starts with the per-process caches empty (ids are reused): the flash fast
    path's facts and the chains' referral policies."""
    from shequn.orders.flash_path import forget_cached_facts
    from shequn.referrals.policy import forget_policies

    forget_cached_facts()
    forget_policies()


@pytest.fixture(autouse=True)
def _append_only_guards(request: pytest.FixtureRequest) -> Iterator[None]:
    """Transactional tests end with a flush (DELETE/TRUNCATE of every table); the append-only
    triggers would refuse it. They are taken down just for the flush and put back after."""
    marker = request.node.get_closest_marker("django_db")
    transactional = any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    ) or bool(marker and marker.kwargs.get("transaction"))
    if transactional:
        request.getfixturevalue("transactional_db")
        install_append_only_guards(connections["default"])
    yield
    if transactional:
        remove_append_only_guards(connections["default"])


@dataclass
class Chain:
    hq: OrgNode
    region_a: OrgNode
    region_b: OrgNode
    store_a: OrgNode
    store_a2: OrgNode
    store_b: OrgNode
    admin: Staff
    hq_operator: Staff
    region_manager_a: Staff
    manager_a: Staff
    manager_b: Staff
    operator_a: Staff
    cashier_a: Staff
    cashier_b: Staff
    supplier: Staff


def make_staff(node: OrgNode, role: str, username: str) -> Staff:
    return org_actions.create_staff(
        acting=None,
        node=node,
        role=role,
        username=username,
        password=PASSWORD,
        display_name=username,
    )


def build_chain() -> Chain:
    suffix = next(_codes)
    hq = org_actions.create_chain(name="测试连锁", code=f"hq-{suffix}")
    admin = make_staff(hq, Role.HQ_ADMIN, f"admin{suffix}")

    def node(parent: OrgNode, name: str, kind: str) -> OrgNode:
        return org_actions.create_node(
            acting=admin, parent=parent, name=name, kind=kind, code=f"n{suffix}-{next(_codes)}"
        )

    region_a = node(hq, "A大区", NodeKind.REGION)
    region_b = node(hq, "B大区", NodeKind.REGION)
    store_a = node(region_a, "A店", NodeKind.STORE)
    store_a2 = node(region_a, "A2店", NodeKind.STORE)
    store_b = node(region_b, "B店", NodeKind.STORE)
    return Chain(
        hq=hq,
        region_a=region_a,
        region_b=region_b,
        store_a=store_a,
        store_a2=store_a2,
        store_b=store_b,
        admin=admin,
        hq_operator=make_staff(hq, Role.HQ_OPERATOR, f"hqop{suffix}"),
        region_manager_a=make_staff(region_a, Role.REGION_MANAGER, f"rma{suffix}"),
        manager_a=make_staff(store_a, Role.STORE_MANAGER, f"ma{suffix}"),
        manager_b=make_staff(store_b, Role.STORE_MANAGER, f"mb{suffix}"),
        operator_a=make_staff(store_a, Role.GROUP_OPERATOR, f"opa{suffix}"),
        cashier_a=make_staff(store_a, Role.CASHIER, f"ca{suffix}"),
        cashier_b=make_staff(store_b, Role.CASHIER, f"cb{suffix}"),
        supplier=make_staff(hq, Role.SUPPLIER, f"sup{suffix}"),
    )


@pytest.fixture
def chain(db: None) -> Chain:
    return build_chain()


def make_group(
    staff: Staff,
    store: OrgNode,
    name: str = "宝妈群",
    theme: str = GroupTheme.MOTHERS,
    capacity: int = 500,
) -> CustomerGroup:
    return group_actions.create_group(
        acting=staff, store=store, name=name, theme=theme, capacity=capacity
    )


def staff_code(cashier: Staff, group: CustomerGroup, days: int = 30) -> Invitation:
    return group_actions.create_invitation(
        acting=cashier, kind=InvitationKind.STAFF, group=group, days=days
    )


def client_for(staff: Staff) -> Client:
    client = Client()
    client.force_login(staff.user)
    return client


def vouched(code: str, phone: str) -> PhoneProof:
    """What the join's SMS step proves, for tests about something else than the proof."""
    return PhoneProof.vouched(group_actions.resolve_invitation(code).store.chain_id, phone)


def texted_code(phone: str) -> str:
    """The code in the last text sent to ``phone`` (the log backend keeps them in memory)."""
    text = sms.last_text_to(normalize_phone(phone))
    assert text is not None, f"no text was sent to {phone}"
    found = re.search(r"验证码 (\d{6})", text)
    assert found is not None, text
    return found.group(1)


def api_join(client: Client, code: str, phone: str, **fields: Any) -> Any:
    """Join through the API as a phone would: ask for the code, then send it back with the
    join. A refusal of the first step is returned as it is."""
    sent = client.post(
        "/api/join/sms",
        data=json.dumps({"code": code, "phone": phone}),
        content_type="application/json",
    )
    if sent.status_code != 202:
        return sent
    body = {"code": code, "phone": phone, "sms_code": texted_code(phone), **fields}
    return client.post("/api/join", data=json.dumps(body), content_type="application/json")


def phone(n: int) -> str:
    """A valid, distinct mainland mobile number for test member ``n``."""
    return f"+86138{n:08d}"


@pytest.fixture
def world(db: None) -> World:
    from tests.world import build_world

    return build_world()


def make_sku(
    chain: Chain,
    *,
    code: str = "MOXA-1",
    price_fen: int = 3990,
    stock: dict[OrgNode, int] | None = None,
) -> Sku:
    """A product with one SKU, stocked at the given stores (store A with 100 by default)."""
    from shequn.catalog import actions as catalog_actions

    supplier = Supplier.objects.filter(chain=chain.hq).first() or catalog_actions.create_supplier(
        acting=chain.admin, name="艾草供应商"
    )
    product = catalog_actions.create_product(
        acting=chain.admin, supplier=supplier, name="艾草贴", pyramid_role="traffic"
    )
    sku = catalog_actions.add_sku(
        acting=chain.admin, product=product, code=code, price_fen=price_fen, spec="10贴/盒"
    )
    for store, quantity in (stock if stock is not None else {chain.store_a: 100}).items():
        catalog_actions.adjust_stock(
            acting=chain.admin, store=store, sku=sku, delta=quantity, reason="receipt"
        )
    return sku


@dataclass
class FakeWechatPay:
    """Self-generated platform key and APIv3 key, installed into settings for the test."""

    platform_key: Any
    serial: str
    apiv3_key: bytes
    mchid: str = "1900000001"
    appid: str = "wxd678efh567hg6787"

    def notification(
        self,
        order: Any,
        *,
        amount: int | None = None,
        mchid: str | None = None,
        transaction_id: str | None = None,
        notification_id: str | None = None,
        timestamp: int | None = None,
    ) -> Any:
        from shequn.integrations.wechatpay.signing import build_notification

        return build_notification(
            event_type="TRANSACTION.SUCCESS",
            resource={
                "mchid": mchid or self.mchid,
                "appid": self.appid,
                "out_trade_no": order.number,
                "transaction_id": transaction_id or f"4200{order.number}",
                "trade_type": "JSAPI",
                "trade_state": "SUCCESS",
                "success_time": "2026-11-24T18:30:00+08:00",
                "payer": {"openid": "o-test-payer"},
                "amount": {
                    "total": order.total_fen if amount is None else amount,
                    "currency": "CNY",
                },
            },
            platform_key=self.platform_key,
            platform_serial=self.serial,
            apiv3_key=self.apiv3_key,
            notification_id=notification_id,
            timestamp=timestamp,
        )

    def refund_notification(
        self, refund: Any, event_type: str, *, amount: int | None = None
    ) -> Any:
        from shequn.integrations.wechatpay.signing import build_notification

        status = event_type.split(".")[1]
        return build_notification(
            event_type=event_type,
            resource={
                "mchid": self.mchid,
                "out_trade_no": refund.order.number,
                "transaction_id": f"4200{refund.order.number}",
                "out_refund_no": refund.out_refund_no,
                "refund_id": f"50{refund.out_refund_no}",
                "refund_status": status,
                "success_time": "2026-11-24T19:00:00+08:00",
                "user_received_account": "招商银行信用卡0403",
                "amount": {
                    "total": refund.payment.amount_fen,
                    "refund": refund.amount_fen if amount is None else amount,
                    "payer_total": refund.payment.amount_fen,
                    "payer_refund": refund.amount_fen if amount is None else amount,
                },
            },
            platform_key=self.platform_key,
            platform_serial=self.serial,
            apiv3_key=self.apiv3_key,
            original_type="refund",
        )

    def post(self, client: Client, signed: Any) -> Any:
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.headers.items()}
        return client.post(
            "/webhooks/wechatpay/notify",
            data=signed.body,
            content_type="application/json",
            **headers,
        )


@pytest.fixture
def wechatpay(settings: Any) -> FakeWechatPay:
    import secrets

    from shequn.integrations.wechatpay.crypto import generate_private_key, public_pem

    key = generate_private_key()
    fake = FakeWechatPay(
        platform_key=key,
        serial="PUB_KEY_ID_0114232134912410000000000001",
        apiv3_key=secrets.token_hex(16).encode(),
    )
    settings.SHEQUN_WECHATPAY = {
        "MCHID": fake.mchid,
        "APPID": fake.appid,
        "APIV3_KEY": fake.apiv3_key.decode(),
        "PLATFORM_PUBLIC_KEYS": {fake.serial: public_pem(key.public_key()).decode()},
    }
    return fake


@pytest.fixture
def gateway(wechatpay: FakeWechatPay, settings: Any, live_server: Any) -> Iterator[tuple[Any, str]]:
    """The simulated gateway on loopback, configured as our merchant's API base, notifying the
    live test server: (SimulatedGateway, its base URL)."""
    from shequn.integrations.wechatpay.crypto import generate_private_key, private_pem
    from shequn.integrations.wechatpay.simulator import SimulatedGateway, serve_in_thread

    merchant_key = generate_private_key()
    sim = SimulatedGateway(
        mchid=wechatpay.mchid,
        merchant_public_key=merchant_key.public_key(),
        merchant_serial="MERCHANT-1",
        platform_key=wechatpay.platform_key,
        platform_serial=wechatpay.serial,
        apiv3_key=wechatpay.apiv3_key,
    )
    server = serve_in_thread(sim)
    base = f"http://127.0.0.1:{server.server_port}"
    settings.SHEQUN_WECHATPAY = {
        **settings.SHEQUN_WECHATPAY,
        "API_BASE": base,
        "MERCHANT_KEY": private_pem(merchant_key).decode(),
        "MERCHANT_SERIAL": "MERCHANT-1",
    }
    settings.SHEQUN_PUBLIC_URL = live_server.url
    yield sim, base
    server.shutdown()


def due_orders(chain: Chain, sku: Sku, *, count: int, quantity: int) -> None:
    """``count`` members at store A each with one unpaid order of ``quantity`` units of ``sku``,
    all past their payment deadline (what the sweeps act on)."""
    from datetime import timedelta

    from shequn.core import timeutil
    from shequn.members.models import Member
    from shequn.orders.actions import LineRequest, place_order
    from shequn.orders.models import Order

    Member.objects.bulk_create(
        Member(chain=chain.hq, phone=phone(n), home_store=chain.store_a) for n in range(count)
    )
    for n, member in enumerate(Member.objects.filter(chain=chain.hq)):
        place_order(
            member=member,
            store=chain.store_a,
            lines=[LineRequest(sku.pk, quantity)],
            idempotency_key=f"k{n}",
        )
    Order.objects.update(payment_deadline=timeutil.now() - timedelta(minutes=1))


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SHEQUN_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run `make browser` (scripts/ensure-chromium.sh)")
    # Playwright's sync API runs an event loop; Django must allow ORM calls from this thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def wait_for_status(obj: Any, status: str, timeout_s: float = 20) -> Any:
    """Reload ``obj`` until its status is ``status`` (a notification arriving over loopback)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        obj.refresh_from_db()
        if obj.status == status:
            return obj
        time.sleep(0.05)
    raise AssertionError(f"{type(obj).__name__} stayed {obj.status}")
