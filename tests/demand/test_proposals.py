"""Reverse customization (C2B): a supplier drafts a proposal from a topic, HQ publishes it to the
groups the topic came from, their members pre-order with a deposit; past the deadline the sweep
decides once — reached: the product goes on sale, the pre-orders are orders, one production order;
missed: every deposit refunded once. Then the goods arrive and the pre-orders are picked up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog import actions as catalog
from shequn.catalog.models import Product, Sku, StockItem
from shequn.core import timeutil
from shequn.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from shequn.demand.actions import classify_pending
from shequn.demand.models import (
    PreOrder,
    PreOrderBuyer,
    PreOrderStatus,
    ProductionLine,
    ProductionOrder,
    Proposal,
    ProposalStatus,
    Topic,
)
from shequn.demand.proposals import (
    cancel_proposal,
    draft_proposal,
    place_preorder,
    publish_proposal,
    receive_production_delivery,
    sweep_proposals,
)
from shequn.flows.sweeps import SWEEPS
from shequn.groups.actions import join_group
from shequn.members.models import Member
from shequn.orders.actions import request_member_refund, verify_pickup
from shequn.orders.models import Order, OrderStatus, Refund
from tests.conftest import Chain, make_group, phone
from tests.demand.test_topics import say
from tests.orders.test_pickup import pay
from tests.promotions.test_group_buy import refund_succeeds

pytestmark = pytest.mark.django_db


def join(group: Any, n: int) -> Member:
    """A member of ``group`` who consented to chat analysis (so their needs reach topics)."""
    person = Member.objects.create(
        chain_id=group.store.chain_id,
        phone=phone(n),
        home_store=group.store,
        consent_chat_analysis=True,
        consent_chat_analysis_at=timeutil.now(),
    )
    join_group(group=group, member=person, channel="store_qr")
    return person


@pytest.fixture
def c2b(chain: Chain) -> dict[str, Any]:
    return make_c2b(chain)


def make_c2b(chain: Chain) -> dict[str, Any]:
    """A topic (艾草暖宫贴 · 包装/规格) voiced in groups at stores A and B, a supplier account."""
    maker = catalog.create_supplier(acting=chain.admin, name="艾草供应商")
    health = catalog.get_or_create_category(acting=chain.admin, name="养生")
    moxa = catalog.create_product(acting=chain.admin, supplier=maker, name="艾草暖宫贴 10贴/盒")
    Product.objects.filter(pk=moxa.pk).update(category=health)
    maker.accounts.add(chain.supplier.user)
    group_a = make_group(chain.manager_a, chain.store_a, name="A店宝妈群")
    group_b = make_group(chain.manager_b, chain.store_b, name="B店群")
    quiet = make_group(chain.manager_a, chain.store_a, name="A店安静群")
    people = [join(group_a, 1), join(group_a, 2), join(group_b, 3), join(quiet, 4)]
    say(chain, group_a, "1", people[0], "要是有小包装的艾草暖宫贴就好了")
    say(chain, group_b, "2", people[2], "希望艾草暖宫贴出小包装，出差带着方便")
    classify_pending()
    topic = Topic.objects.get(title="艾草暖宫贴 10贴/盒 · 包装/规格")
    return {
        "maker": maker,
        "topic": topic,
        "group_a": group_a,
        "group_b": group_b,
        "people": people,
    }


def drafted(chain: Chain, c2b: dict[str, Any], **overrides: Any) -> Proposal:
    params: dict[str, Any] = {
        "acting": chain.supplier,
        "topic": c2b["topic"],
        "title": "艾草暖宫贴 旅行装",
        "spec": "3贴/盒",
        "description": "应群友要求做小包装, 出差带着方便",
        "target_price_fen": 1990,
        "deposit_fen": 500,
        "min_units": 5,
        "deadline": timeutil.now() + timedelta(days=7),
        "per_member_limit": 3,
    }
    params.update(overrides)
    return draft_proposal(**params)


def published(chain: Chain, c2b: dict[str, Any], **overrides: Any) -> Proposal:
    return publish_proposal(acting=chain.hq_operator, proposal=drafted(chain, c2b, **overrides))


def preorder(proposal: Proposal, who: Member, units: int, key: str = "") -> Order:
    return place_preorder(
        member=who, proposal=proposal, quantity=units, idempotency_key=key or f"p{who.pk}-{units}"
    ).order


def paid(proposal: Proposal, who: Member, units: int) -> Order:
    order = preorder(proposal, who, units)
    assert pay(order, f"T{order.pk}") == "paid"
    order.refresh_from_db()
    return order


def past_deadline(proposal: Proposal) -> None:
    Proposal.objects.filter(pk=proposal.pk).update(deadline=timeutil.now() - timedelta(seconds=1))


def test_supplier_drafts_hq_publishes_to_the_groups_that_asked(
    chain: Chain, c2b: dict[str, Any]
) -> None:
    proposal = drafted(chain, c2b)
    assert (proposal.status, proposal.supplier, proposal.category_id) == (
        ProposalStatus.DRAFT,
        c2b["maker"],
        c2b["topic"].product.category_id,
    )
    with pytest.raises(PermissionDenied):  # suppliers draft, HQ publishes
        publish_proposal(acting=chain.supplier, proposal=proposal)
    proposal = publish_proposal(acting=chain.hq_operator, proposal=proposal)
    assert proposal.status == ProposalStatus.OPEN
    assert set(proposal.groups.all()) == {c2b["group_a"], c2b["group_b"]}  # not the quiet one
    product, sku = Product.objects.get(pk=proposal.product_id), Sku.objects.get(pk=proposal.sku_id)
    assert (product.is_active, sku.is_active, sku.price_fen) == (False, False, 1990)
    with pytest.raises(Conflict):
        publish_proposal(acting=chain.hq_operator, proposal=proposal)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_price_fen", 0),
        ("target_price_fen", -100),
        ("target_price_fen", 10**12),
        ("target_price_fen", 19.9),
        ("deposit_fen", 2000),  # above the price
        ("min_units", 0),
        ("min_units", 10**9),
        ("per_member_limit", 0),
        ("title", ""),
        ("title", "长" * 61),
        ("deadline", timeutil.now() - timedelta(days=1)),
        ("deadline", timeutil.now() + timedelta(days=400)),
    ],
)
def test_bad_proposals_are_refused_and_write_nothing(
    chain: Chain, c2b: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(InvalidInput):
        drafted(chain, c2b, **{field: value})
    assert Proposal.objects.count() == 0


def test_a_supplier_cannot_draft_on_a_topic_it_may_not_see(
    chain: Chain, c2b: dict[str, Any]
) -> None:
    farm = catalog.create_supplier(acting=chain.admin, name="农场")
    eggs = catalog.create_product(acting=chain.admin, supplier=farm, name="土鸡蛋 30枚")
    other = Topic.objects.create(
        chain=chain.hq,
        title="土鸡蛋 · 质量",
        anchor_kind="product",
        product=eggs,
        anchor_key=f"p:{eggs.pk}",
        aspect="quality",
    )
    with pytest.raises(NotFound):
        drafted(chain, c2b, topic=other)
    with pytest.raises(PermissionDenied):
        drafted(chain, c2b, acting=chain.manager_a)
    with pytest.raises(InvalidInput):  # HQ must say which supplier
        drafted(chain, c2b, acting=chain.hq_operator)
    assert drafted(chain, c2b, acting=chain.hq_operator, supplier=farm).supplier == farm
    assert Proposal.objects.count() == 1


def test_only_members_of_the_source_groups_pre_order_within_their_limit(
    chain: Chain, c2b: dict[str, Any]
) -> None:
    proposal = published(chain, c2b)
    alice, _, _, outsider = c2b["people"]
    with pytest.raises(PermissionDenied):
        preorder(proposal, outsider, 1)
    order = preorder(proposal, alice, 2)
    assert (order.subtotal_fen, order.total_fen, order.balance_due_fen) == (3980, 1000, 2980)
    assert order.store == chain.store_a
    assert order.source_group == c2b["group_a"]
    assert preorder(proposal, alice, 2).pk == order.pk  # the same key: the same order
    with pytest.raises(DomainError) as refused:
        preorder(proposal, alice, 2, key="again")  # 2 + 2 > 3
    assert refused.value.code == "preorder_member_limit"
    assert Order.objects.count() == 1
    proposal.refresh_from_db()
    assert proposal.committed_units == 0  # nothing counts before the deposit is paid
    assert pay(order, "T1") == "paid"
    proposal.refresh_from_db()
    assert proposal.committed_units == 2
    assert PreOrder.objects.get(order=order).status == PreOrderStatus.COMMITTED
    past_deadline(proposal)
    proposal.refresh_from_db()
    with pytest.raises(DomainError) as closed:
        preorder(proposal, c2b["people"][1], 1)
    assert closed.value.code == "proposal_closed"
    # a retry that comes back after the deadline still gets its order, not "closed"
    assert preorder(proposal, alice, 2).pk == order.pk
    with pytest.raises(DomainError) as reused:  # the same key for another quantity
        preorder(proposal, alice, 1, key=f"p{alice.pk}-2")
    assert reused.value.code == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_reached_makes_the_product_the_orders_and_one_production_order(
    chain: Chain, c2b: dict[str, Any]
) -> None:
    proposal = published(chain, c2b)
    alice, bob, carol, _ = c2b["people"]
    a, b, c = paid(proposal, alice, 2), paid(proposal, bob, 1), paid(proposal, carol, 3)
    late = preorder(proposal, bob, 1, key="late")  # not paid by the deadline
    with pytest.raises(DomainError) as early:
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=a.pickup_code)
    assert early.value.code == "preorder_not_ready"
    past_deadline(proposal)

    assert sweep_proposals() == 1
    assert sweep_proposals() == 0  # decided once
    proposal.refresh_from_db()
    assert (proposal.status, proposal.committed_units) == (ProposalStatus.SUCCEEDED, 6)
    production = ProductionOrder.objects.get()
    assert production.supplier == c2b["maker"]
    assert production.total_units == 6
    assert {(line.store, line.quantity) for line in production.lines.all()} == {
        (chain.store_a, 3),
        (chain.store_b, 3),
    }
    assert set(
        PreOrder.objects.filter(status=PreOrderStatus.CONVERTED).values_list("order", flat=True)
    ) == {a.pk, b.pk, c.pk}
    assert Sku.objects.get(pk=proposal.sku_id).is_active
    assert Product.objects.get(pk=proposal.product_id).is_active
    with pytest.raises(DomainError) as kept:  # being made for them: the store decides now
        request_member_refund(member=alice, order=a, reason="不想要了")
    assert kept.value.code == "preorder_converted"

    # A deposit paid after the decision does not count: it is owed back, once.
    assert pay(late, "T-late") == "paid"
    assert PreOrder.objects.get(order=late).status == PreOrderStatus.REFUND_DUE
    assert sweep_proposals() == 1
    assert sweep_proposals() == 0
    assert Refund.objects.filter(order=late).count() == 1

    # Not on the shelf yet; the store takes its share in, and pickup works (balance at the till).
    with pytest.raises(DomainError) as not_here:
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=a.pickup_code)
    assert "尚未到店" in str(not_here.value)
    line_a = ProductionLine.objects.get(store=chain.store_a)
    with pytest.raises(NotFound):
        receive_production_delivery(acting=chain.manager_b, line=line_a)
    receive_production_delivery(acting=chain.manager_a, line=line_a)
    with pytest.raises(Conflict):
        receive_production_delivery(acting=chain.manager_a, line=line_a)
    item = StockItem.objects.get(store=chain.store_a, sku_id=proposal.sku_id)
    assert (item.quantity, item.quantity_allocated) == (3, 3)
    done = verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=a.pickup_code)
    assert (done.status, done.balance_due_fen) == (OrderStatus.FULFILLED, 2 * 1490)
    item.refresh_from_db()
    assert (item.quantity, item.quantity_allocated) == (1, 1)


def test_missed_refunds_every_deposit_exactly_once(chain: Chain, c2b: dict[str, Any]) -> None:
    proposal = published(chain, c2b, min_units=10)
    alice, bob, carol, _ = c2b["people"]
    orders = [paid(proposal, alice, 2), paid(proposal, bob, 1), paid(proposal, carol, 3)]
    unpaid = preorder(proposal, bob, 1, key="unpaid")
    past_deadline(proposal)

    assert sweep_proposals() == 1 + 3
    assert sweep_proposals() == 0
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.FAILED
    refunds = {r.order_id: r for r in Refund.objects.all()}
    assert set(refunds) == {o.pk for o in orders}
    assert [refunds[o.pk].amount_fen for o in orders] == [1000, 500, 1500]
    assert all("未达成" in r.reason for r in refunds.values())
    assert set(PreOrder.objects.exclude(order=unpaid).values_list("status", flat=True)) == {
        PreOrderStatus.REFUNDED
    }
    assert ProductionOrder.objects.count() == 0
    assert not Sku.objects.get(pk=proposal.sku_id).is_active
    for refund in refunds.values():
        assert refund_succeeds(refund) == "succeeded"
    assert set(Order.objects.filter(pk__in=refunds).values_list("status", flat=True)) == {
        OrderStatus.REFUNDED
    }
    assert PreOrderBuyer.objects.get(member=alice).units == 0  # limits given back
    assert sweep_proposals() == 0


def test_a_member_withdraws_before_the_deadline_and_the_count_follows(
    chain: Chain, c2b: dict[str, Any]
) -> None:
    proposal = published(chain, c2b)
    alice = c2b["people"][0]
    order = paid(proposal, alice, 3)
    refund = request_member_refund(member=alice, order=order, reason="买多了")
    proposal.refresh_from_db()
    assert proposal.committed_units == 0
    assert PreOrder.objects.get(order=order).status == PreOrderStatus.WITHDRAWN
    refund_succeeds(refund)
    assert PreOrderBuyer.objects.get(member=alice).units == 0
    assert preorder(proposal, alice, 3, key="again").total_fen == 1500  # may pre-order again
    past_deadline(proposal)
    assert sweep_proposals() == 1  # failed; nothing more owed (the withdrawal was refunded)
    assert Refund.objects.count() == 1


def test_hq_cancels_and_the_sweep_refunds_what_was_paid(chain: Chain, c2b: dict[str, Any]) -> None:
    proposal = published(chain, c2b)
    order = paid(proposal, c2b["people"][2], 2)
    with pytest.raises(PermissionDenied):
        cancel_proposal(acting=chain.supplier, proposal=proposal, reason="做不了")
    cancel_proposal(acting=chain.hq_operator, proposal=proposal, reason="供应商无法按期生产")
    assert sweep_proposals() == 1
    refund = Refund.objects.get()
    assert (refund.order_id, refund.amount_fen) == (order.pk, 1000)
    assert "取消" in refund.reason
    with pytest.raises(Conflict):
        cancel_proposal(acting=chain.hq_operator, proposal=proposal, reason="again")


def test_the_sweep_is_registered() -> None:
    assert ("demand.proposals", sweep_proposals) in SWEEPS
