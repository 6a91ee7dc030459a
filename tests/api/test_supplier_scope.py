"""For every API endpoint and console page: a supplier's account sees its own products (and their
stock), the demand topics of its products and categories, its own proposals — nothing else.

A supplier's staff account sits at the chain's root node, so node scope alone would show it
the whole chain: every read must also check the role's permissions. The endpoints are
enumerated from the OpenAPI schema and the console's URL patterns, so a new one is probed the
moment it exists: it must answer 403/404 or an empty list, unless it is listed in
``SUPPLIER_MAY_SEE`` with a check of what exactly the supplier gets.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

import pytest
from django.urls import URLPattern

from shequn.catalog import actions as catalog_actions
from shequn.catalog.models import Product, Sku, Supplier
from shequn.console.urls import urlpatterns as console_urls
from shequn.core import timeutil
from shequn.demand.models import Message, Proposal, ProposalStatus, Topic, TopicMention
from shequn.members.models import Member
from shequn.org.models import Staff
from shequn.promotions.actions import create_coupon_template, create_flash_sale
from shequn.promotions.calendar import create_schedule
from shequn.promotions.models import CouponTemplate, FlashSale, PromotionSchedule
from shequn.referrals.actions import set_commission_rule
from tests.api.test_scope_isolation import (
    LIST_FILTERS,
    PUBLIC,
    call,
    operations,
    snapshot,
    write_bodies,
)
from tests.conftest import client_for
from tests.world import B_MARKERS, World

# Strings only in what is not the supplier's: other suppliers' products and their campaigns,
# the groups' members (phones masked or not), the sharers.
NOT_THEIRS = (
    *B_MARKERS,
    "甲会员",
    "13900001111",
    "****1111",
    "****9999",
    "艾草贴",
    "W-1",
    "艾草供应商",
    "本连锁拼团",
    "他家",
)


@dataclass
class SupplierWorld:
    world: World
    supplier: Staff  # a 供应商 account, linked to ``own_supplier``
    own_supplier: Supplier
    own_product: Product
    own_sku: Sku
    own_topic: Topic
    own_proposal: Proposal
    other_topic: Topic  # about another supplier's product, in another category
    sale: FlashSale  # this chain's, of another supplier's SKU
    coupon: CouponTemplate
    schedule: PromotionSchedule


@pytest.fixture
def sw(world: World) -> SupplierWorld:
    chain = world.chain
    admin = chain.admin
    own_supplier = catalog_actions.create_supplier(acting=admin, name="自家供应商")
    own_supplier.accounts.add(chain.supplier.user)
    own_product = catalog_actions.create_product(
        acting=admin,
        supplier=own_supplier,
        name="自家艾灸盒",
        category=catalog_actions.get_or_create_category(acting=admin, name="艾灸器具"),
    )
    own_sku = catalog_actions.add_sku(
        acting=admin, product=own_product, code="OWN-1", price_fen=5990, spec="1盒"
    )
    for store in (chain.store_a, chain.store_b):
        catalog_actions.adjust_stock(
            acting=admin, store=store, sku=own_sku, delta=7, reason="receipt"
        )
    Product.objects.filter(pk=world.sku.product_id).update(
        category=catalog_actions.get_or_create_category(acting=admin, name="他家类目")
    )
    now = timeutil.now()
    # member A's needs may be heard on the demand board (chat analysis consented)
    Member.objects.filter(pk=world.member_a.pk).update(
        consent_chat_analysis=True, consent_chat_analysis_at=now
    )
    own_topic = Topic.objects.create(
        chain=chain.hq,
        title="自家艾灸盒 · 包装/规格",
        anchor_kind="product",
        product=own_product,
        category=own_product.category,
        anchor_key=f"p:{own_product.pk}",
        aspect="packaging",
    )
    other_topic = Topic.objects.create(
        chain=chain.hq,
        title="他家艾草贴 · 价格",
        anchor_kind="product",
        product=world.sku.product,
        anchor_key=f"p:{world.sku.product_id}",
        aspect="price",
    )
    for n, (topic, text) in enumerate(
        ((own_topic, "想要大一点的艾灸盒"), (other_topic, "他家艾草贴太贵了"))
    ):
        message = Message.objects.create(
            chain=chain.hq,
            group=world.group_a,
            platform="wecom",
            platform_msg_id=f"msg-sup-{n}",
            sender_member=world.member_a,
            sent_at=now,
            msg_type="text",
            content=text,
            label="need",
            label_score=1.0,
        )
        TopicMention.objects.create(
            topic=topic,
            message=message,
            member=world.member_a,
            group=world.group_a,
            store=chain.store_a,
            label="need",
            sent_at=now,
        )
    own_proposal = Proposal.objects.create(
        chain=chain.hq,
        topic=own_topic,
        supplier=own_supplier,
        title="自家大号艾灸盒",
        spec="1盒",
        target_price_fen=6990,
        deposit_fen=500,
        min_units=10,
        deadline=now + timedelta(days=3),
        status=ProposalStatus.DRAFT,
        drafted_by=chain.supplier.user,
    )
    sale = create_flash_sale(
        acting=chain.hq_operator,
        sku=world.sku,
        name="他家秒杀",
        price_fen=1,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        per_member_limit=1,
        per_order_limit=1,
        store_quotas={chain.store_a: 3, chain.store_b: 3},
    )
    coupon = create_coupon_template(
        acting=chain.hq_operator,
        name="他家满减券",
        kind="coupon",
        discount_fen=100,
        total_quantity=10,
        per_member_limit=1,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        valid_days=1,
        products=[world.sku.product],
    )
    schedule = create_schedule(
        acting=chain.hq_operator,
        name="他家周期秒杀",
        kind="flash_sale",
        sku=world.sku,
        price_fen=1,
        weekdays=tuple(range(1, 8)),
        start_time=time(23, 59),
        duration_minutes=1,
        per_member_limit=1,
        per_order_limit=1,
        chain_quota=10,
    )
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000], product=world.sku.product)
    return SupplierWorld(
        world=world,
        supplier=chain.supplier,
        own_supplier=own_supplier,
        own_product=own_product,
        own_sku=own_sku,
        own_topic=own_topic,
        own_proposal=own_proposal,
        other_topic=other_topic,
        sale=sale,
        coupon=coupon,
        schedule=schedule,
    )


def others_ids(sw: SupplierWorld) -> dict[str, int]:
    """Path parameters naming this chain's objects that are not the supplier's."""
    w = sw.world
    return {
        "node_id": w.chain.store_b.pk,
        "staff_id": w.chain.manager_b.pk,
        "member_id": w.member_b.pk,
        "group_id": w.group_b.pk,
        "membership_id": w.membership_b.pk,
        "invitation_id": w.invitation_b.pk,
        "order_id": w.order_b.pk,
        "product_id": w.sku.product_id,
        "sku_id": w.sku.pk,
        "sale_id": sw.sale.pk,
        "group_buy_id": w.team_b.campaign_id,
        "team_id": w.team_b.pk,
        "template_id": sw.coupon.pk,
        "schedule_id": sw.schedule.pk,
        "sharer_id": w.sharer_b.pk,
        "case_id": w.case_b.pk,
        "topic_id": sw.other_topic.pk,
        "proposal_id": w.proposal_b.pk,
        "line_id": w.delivery_b.pk,
    }


def own_ids(sw: SupplierWorld) -> dict[str, int]:
    return {
        "product_id": sw.own_product.pk,
        "sku_id": sw.own_sku.pk,
        "topic_id": sw.own_topic.pk,
        "proposal_id": sw.own_proposal.pk,
    }


def assert_nothing_not_theirs(response: Any, where: str) -> None:
    text = response.content.decode("utf-8", errors="replace")
    if response.get("Content-Type", "").startswith("application/json"):
        text = json.dumps(json.loads(text), ensure_ascii=False)  # \u escapes would hide a leak
    for marker in NOT_THEIRS:
        assert marker not in text, f"{where} leaked {marker!r}"


def items(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    rows: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return rows


def refused_or_empty(response: Any, where: str) -> None:
    if response.status_code in (403, 404):
        assert set(response.json()) >= {"code", "message"}, where
        return
    assert response.status_code == 200, f"{where} → {response.status_code}"
    body = response.json()
    assert body in ([], {"items": [], "count": 0}), f"{where} showed {body}"


Check = Callable[[SupplierWorld, Any, str], None]


def only_own_products(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert {row["id"] for row in items(response)} == {sw.own_product.pk}, where


def own_product_detail(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert response.json()["id"] == sw.own_product.pk, where


def only_own_stock(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    rows = items(response)
    assert rows, f"{where}: the supplier sees its own products' stock"
    assert {row["sku_id"] for row in rows} == {sw.own_sku.pk}, where


def only_own_topics(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert {row["id"] for row in items(response)} == {sw.own_topic.pk}, where


def only_own_proposals(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert {row["id"] for row in items(response)} == {sw.own_proposal.pk}, where


def own_proposal_detail(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert response.json()["id"] == sw.own_proposal.pk, where


def only_self(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert [row["id"] for row in items(response)] == [sw.supplier.pk], where


def me(sw: SupplierWorld, response: Any, where: str) -> None:
    assert response.status_code == 200, where
    assert response.json()["staff"]["id"] == sw.supplier.pk, where


def org_tree(sw: SupplierWorld, response: Any, where: str) -> None:
    """The chain's stores: where its products are stocked (the stock rows name them anyway)."""
    assert response.status_code == 200, where


# What a supplier may get from a GET beyond "refused or empty", each with its check. Object
# endpoints are also called with an id of another supplier's object: that is a 404.
SUPPLIER_MAY_SEE: dict[str, Check] = {
    "/api/auth/me": me,
    "/api/catalog/products": only_own_products,
    "/api/catalog/products/{product_id}": own_product_detail,
    "/api/catalog/stock": only_own_stock,
    "/api/demand/topics": only_own_topics,
    "/api/demand/proposals": only_own_proposals,
    "/api/demand/proposals/{proposal_id}": own_proposal_detail,
    "/api/org/nodes": org_tree,
    "/api/org/nodes/{node_id}": org_tree,
    "/api/org/staff": only_self,
}


def test_a_supplier_reads_only_its_own_through_every_api_endpoint(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    others, own = others_ids(sw), own_ids(sw)
    filters: dict[str, Any] = {**others, "store_id": sw.world.chain.store_b.pk}
    probed = 0
    for method, template in operations():
        if method != "GET" or (method, template) in PUBLIC:
            continue
        params = re.findall(r"{(\w+)}", template)
        unknown = [p for p in params if p not in others]
        assert not unknown, f"GET {template}: unknown path parameter {unknown}; add an id"
        url = template.format(**{p: others[p] for p in params})
        where = f"supplier GET {url}"
        response = call(client, "GET", url)
        assert_nothing_not_theirs(response, where)
        check = SUPPLIER_MAY_SEE.get(template)
        if params and template != "/api/org/nodes/{node_id}":
            assert response.status_code == 404, f"{where} → {response.status_code}"
            if check is not None:
                own_url = template.format(**{p: own[p] for p in params})
                own_response = call(client, "GET", own_url)
                check(sw, own_response, f"supplier GET {own_url}")
                assert_nothing_not_theirs(own_response, own_url)
        elif check is not None:
            check(sw, response, where)
        else:
            refused_or_empty(response, where)
        if not params:
            for name in LIST_FILTERS:
                filtered = call(client, "GET", url, **{name: filters[name]})
                assert filtered.status_code in (200, 403, 404), f"{where}?{name}"
                assert_nothing_not_theirs(filtered, f"{where}?{name}")
                if check is None:
                    refused_or_empty(filtered, f"{where}?{name}")
        probed += 1
    assert probed >= 40


def test_a_supplier_sees_its_own_products_only(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    assert [p["id"] for p in items(client.get("/api/catalog/products"))] == [sw.own_product.pk]
    assert client.get(f"/api/catalog/products/{sw.own_product.pk}").status_code == 200
    assert client.get(f"/api/catalog/products/{sw.world.sku.product_id}").status_code == 404
    # ... while the chain's staff see the whole catalog
    cashier = client_for(sw.world.chain.cashier_b)
    assert len(items(cashier.get("/api/catalog/products"))) == 2


def test_a_supplier_sees_its_own_products_stock_in_every_store(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    rows = items(client.get("/api/catalog/stock"))
    stores = {sw.world.chain.store_a.pk, sw.world.chain.store_b.pk}
    assert {(row["store_id"], row["sku_id"]) for row in rows} == {
        (store, sw.own_sku.pk) for store in stores
    }
    by_store = client.get("/api/catalog/stock", {"store_id": sw.world.chain.store_b.pk})
    assert [row["store_id"] for row in items(by_store)] == [sw.world.chain.store_b.pk]
    mine = client.get("/api/catalog/stock", {"sku_id": sw.own_sku.pk})
    assert len(items(mine)) == 2
    assert client.get("/api/catalog/stock", {"sku_id": sw.world.sku.pk}).status_code == 404


def test_a_supplier_gets_no_sharer_or_statement(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    assert items(client.get("/api/referrals/sharers")) == []
    statement = client.get(f"/api/referrals/sharers/{sw.world.sharer_b.pk}/statement")
    assert statement.status_code == 404
    # ... while the store's staff still do
    manager = client_for(sw.world.chain.manager_b)
    assert [s["id"] for s in items(manager.get("/api/referrals/sharers"))] == [sw.world.sharer_b.pk]
    statement = manager.get(f"/api/referrals/sharers/{sw.world.sharer_b.pk}/statement")
    assert statement.status_code == 200


def test_a_supplier_gets_no_commission_rule_or_referral_settings(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    assert items(client.get("/api/referrals/rules")) == []
    assert client.get("/api/referrals/settings").status_code == 403
    assert client.get("/referrals/").status_code == 403
    cashier = client_for(sw.world.chain.cashier_b)
    assert len(items(cashier.get("/api/referrals/rules"))) == 1
    assert cashier.get("/api/referrals/settings").status_code == 200


@pytest.mark.parametrize(
    ("listing", "key"),
    [
        ("flash-sales", "sale"),
        ("group-buys", "group_buy"),
        ("coupon-templates", "coupon"),
        ("schedules", "schedule"),
    ],
)
def test_a_supplier_sees_no_campaign_while_store_staff_do(
    sw: SupplierWorld, listing: str, key: str
) -> None:
    campaign_id = {
        "sale": sw.sale.pk,
        "group_buy": sw.world.team_b.campaign_id,
        "coupon": sw.coupon.pk,
        "schedule": sw.schedule.pk,
    }[key]
    supplier = client_for(sw.supplier)
    assert items(supplier.get(f"/api/promotions/{listing}")) == []
    if listing != "schedules":  # a schedule has no GET of its own
        assert supplier.get(f"/api/promotions/{listing}/{campaign_id}").status_code == 404
    cashier = client_for(sw.world.chain.cashier_b)
    assert [c["id"] for c in items(cashier.get(f"/api/promotions/{listing}"))] == [campaign_id]


def test_the_calendar_is_refused_to_a_supplier(sw: SupplierWorld) -> None:
    refused = client_for(sw.supplier).get("/api/promotions/calendar")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert client_for(sw.supplier).get("/promotions/calendar/").status_code == 403
    cashier = client_for(sw.world.chain.cashier_b)
    assert cashier.get("/api/promotions/calendar").status_code == 200
    assert cashier.get("/promotions/calendar/").status_code == 200


def test_a_supplier_writes_nothing_but_its_proposals(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    ids = others_ids(sw)
    bodies = write_bodies(sw.world)
    for method, template in operations():
        if method == "GET" or (method, template) in PUBLIC:
            continue
        url = template.format(**{p: ids[p] for p in re.findall(r"{(\w+)}", template)})
        where = f"supplier {method} {url}"
        assert (method, template) in bodies, f"{method} {template}: add a probe body"
        before = snapshot()
        response = call(client, method, url, bodies[(method, template)])
        assert_nothing_not_theirs(response, where)
        if template == "/api/auth/tokens":  # acts on the caller only
            assert response.status_code == 201, where
            continue
        assert response.status_code in (403, 404), f"{where} → {response.status_code}"
        assert snapshot() == before, f"{where} wrote something"


# --- console pages ----------------------------------------------------------------------------
def console_pages() -> list[tuple[str, list[str]]]:
    """Every console URL pattern (GET), with its path parameters."""
    pages = []
    for pattern in console_urls:
        assert isinstance(pattern, URLPattern), f"{pattern}: probe the included pages too"
        route = str(pattern.pattern)
        pages.append((route, re.findall(r"<(?:\w+:)?(\w+)>", route)))
    return pages


CONSOLE_PUBLIC = {"login/", "logout/", "j/<str:code>/"}


def page_text(response: Any) -> str:
    """What a page shows; an Excel download's text is read from inside its zip."""
    if response.get("Content-Type", "").startswith("application/vnd.openxmlformats"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            return "".join(book.read(name).decode("utf-8") for name in book.namelist())
    return str(response.content.decode("utf-8", errors="replace"))


def test_a_supplier_sees_only_its_own_on_every_console_page(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    others = others_ids(sw)
    probed = 0
    for route, params in console_pages():
        if route in CONSOLE_PUBLIC:
            continue
        unknown = [p for p in params if p not in others]
        assert not unknown, f"/{route}: unknown path parameter {unknown}; add an id"
        url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(others[m.group(1)]), route)
        response = client.get(url)
        where = f"supplier GET {url}"
        assert response.status_code in (200, 403, 404, 405), f"{where} → {response.status_code}"
        if params and response.status_code == 200:
            pytest.fail(f"{where}: another supplier's object is shown")
        body = page_text(response)
        for marker in NOT_THEIRS:
            assert marker not in body, f"{where} leaked {marker!r}"
        probed += 1
    assert probed >= 20


def test_console_stock_shows_the_suppliers_own_products_only(sw: SupplierWorld) -> None:
    response = client_for(sw.supplier).get("/stock/")
    assert response.status_code == 200
    assert {item.sku_id for item in response.context["items"]} == {sw.own_sku.pk}
    assert "自家艾灸盒" in response.content.decode()


def test_console_stores_page_hides_the_groups_from_a_supplier(sw: SupplierWorld) -> None:
    supplier = client_for(sw.supplier).get("/stores/")
    assert supplier.status_code == 200
    assert "社群数" not in supplier.content.decode()
    assert all(not store.group_count for store in supplier.context["stores"])
    manager = client_for(sw.world.chain.manager_b).get("/stores/")
    assert [store.group_count for store in manager.context["stores"]] == [1]


def test_console_demand_pages_show_the_suppliers_own(sw: SupplierWorld) -> None:
    client = client_for(sw.supplier)
    board = client.get("/demand/")
    assert [card.topic.pk for card in board.context["cards"]] == [sw.own_topic.pk]
    assert client.get(f"/demand/topics/{sw.own_topic.pk}/propose/").status_code == 200
    assert client.get(f"/proposals/{sw.own_proposal.pk}/").status_code == 200
    listed = client.get("/proposals/")
    assert [p.pk for p in listed.context["proposals"]] == [sw.own_proposal.pk]
