"""Coupons (优惠券) and instant discounts (立减金): claiming within limits, using once, minimum
spend, scope, expiry, stacking, promotions, and what an unpaid close or a refund gives back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog import actions as catalog
from shequn.catalog.models import Product
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, cancel_unpaid_order, place_order
from shequn.orders.models import Order
from shequn.promotions.actions import (
    cancel_coupon_template,
    claim_coupon_for_member,
    create_coupon_template,
)
from shequn.promotions.models import (
    Coupon,
    CouponHolder,
    CouponTemplate,
    InstantDiscountUse,
)
from tests.conftest import Chain, make_sku
from tests.promotions.test_flash_sale import sale_for
from tests.promotions.test_group_buy import build_chain_b_campaign, campaign_for, member_no

pytestmark = pytest.mark.django_db


def template_for(chain: Chain, **overrides: Any) -> CouponTemplate:
    now = timeutil.now()
    params: dict[str, Any] = {
        "acting": chain.hq_operator,
        "name": "满50减10",
        "kind": "coupon",
        "discount_fen": 1000,
        "min_spend_fen": 5000,
        "total_quantity": 100,
        "per_member_limit": 1,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=7),
        "valid_days": 7,
    }
    params.update(overrides)
    return create_coupon_template(**params)


def buy(chain: Chain, member: Member, sku: Any, quantity: int, key: str, **extra: Any) -> Order:
    return place_order(
        member=member,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, quantity)],
        idempotency_key=key,
        **extra,
    ).order


@pytest.fixture
def goods(chain: Chain) -> Any:
    return make_sku(chain, price_fen=3990, stock={chain.store_a: 100})


def test_a_coupon_is_claimed_once_used_once_and_returned_by_an_unpaid_close(
    chain: Chain, goods: Any
) -> None:
    template = template_for(chain)
    member = member_no(chain, 1)
    coupon = claim_coupon_for_member(member=member, template_id=template.pk)
    assert coupon.expires_at == coupon.claimed_at + timedelta(days=7)
    with pytest.raises(DomainError) as again:
        claim_coupon_for_member(member=member, template_id=template.pk)
    assert again.value.code == "coupon_member_limit"
    template.refresh_from_db()
    assert template.issued == 1  # the refused claim rolled its counter back

    with pytest.raises(DomainError) as short:  # ¥39.90 < ¥50 minimum
        buy(chain, member, goods, 1, "k1", coupon_id=coupon.pk)
    assert short.value.code == "coupon_min_spend"
    order = buy(chain, member, goods, 2, "k2", coupon_id=coupon.pk)
    assert (order.subtotal_fen, order.total_fen) == (7980, 6980)
    coupon.refresh_from_db()
    assert (coupon.order_id, coupon.discount_fen) == (order.pk, 1000)
    with pytest.raises(DomainError) as used:
        buy(chain, member, goods, 2, "k3", coupon_id=coupon.pk)
    assert used.value.code == "coupon_used"
    # the same request again is the same order, not a "coupon used" error
    assert buy(chain, member, goods, 2, "k2", coupon_id=coupon.pk).pk == order.pk

    cancel_unpaid_order(order=order, member=member)
    coupon.refresh_from_db()
    assert (coupon.order_id, coupon.discount_fen, coupon.used_at) == (None, 0, None)
    assert buy(chain, member, goods, 2, "k4", coupon_id=coupon.pk).total_fen == 6980


def test_scope_expiry_ownership_and_cancellation(chain: Chain, goods: Any) -> None:
    other = make_sku(chain, code="SOAP-1", price_fen=9900, stock={chain.store_a: 10})
    scoped = template_for(chain, name="艾草专享", products=[goods.product])
    member = member_no(chain, 1)
    coupon = claim_coupon_for_member(member=member, template_id=scoped.pk)
    with pytest.raises(DomainError) as elsewhere:
        buy(chain, member, other, 1, "k1", coupon_id=coupon.pk)
    assert elsewhere.value.code == "coupon_not_applicable"
    # mixed basket: the minimum counts only the lines in scope (¥39.90 of goods < ¥50)
    with pytest.raises(DomainError) as mixed:
        place_order(
            member=member,
            store=chain.store_a,
            lines=[LineRequest(goods.pk, 1), LineRequest(other.pk, 1)],
            idempotency_key="k2",
            coupon_id=coupon.pk,
        )
    assert mixed.value.code == "coupon_min_spend"
    stranger = member_no(chain, 2)
    with pytest.raises(NotFound):
        buy(chain, stranger, goods, 2, "k3", coupon_id=coupon.pk)  # not their coupon
    Coupon.objects.filter(pk=coupon.pk).update(expires_at=timeutil.now())
    with pytest.raises(DomainError) as expired:
        buy(chain, member, goods, 2, "k4", coupon_id=coupon.pk)
    assert expired.value.code == "coupon_expired"
    fresh = claim_coupon_for_member(
        member=stranger, template_id=template_for(chain, name="类目券").pk
    )
    cancel_coupon_template(acting=chain.hq_operator, template=fresh.template)
    with pytest.raises(DomainError) as stopped:
        buy(chain, stranger, goods, 2, "k5", coupon_id=fresh.pk)
    assert stopped.value.code == "coupon_cancelled"
    assert not Order.objects.exists()


def test_category_scope(chain: Chain, goods: Any) -> None:
    health = catalog.get_or_create_category(acting=chain.admin, name="养生")
    Product.objects.filter(pk=goods.product_id).update(category=health)
    template = template_for(chain, categories=[health], min_spend_fen=0, discount_fen=500)
    member = member_no(chain, 1)
    coupon = claim_coupon_for_member(member=member, template_id=template.pk)
    assert buy(chain, member, goods, 1, "k1", coupon_id=coupon.pk).total_fen == 3490


def test_instant_discount_applies_by_itself_best_first_within_budget(
    chain: Chain, goods: Any
) -> None:
    template_for(
        chain,
        name="立减3元",
        kind="instant",
        discount_fen=300,
        min_spend_fen=0,
        valid_days=None,
        total_quantity=2,
    )
    template_for(
        chain,
        name="满79减8",
        kind="instant",
        discount_fen=800,
        min_spend_fen=7900,
        valid_days=None,
        total_quantity=1,
    )
    first = buy(chain, member_no(chain, 1), goods, 2, "k1")  # ¥79.80: the ¥8 one is worth more
    assert first.total_fen == 7980 - 800
    second = buy(chain, member_no(chain, 2), goods, 2, "k2")  # ¥8 budget gone: ¥3 applies
    assert second.total_fen == 7980 - 300
    again = buy(chain, member_no(chain, 2), goods, 1, "k3")  # the ¥3 one: 1 per member
    assert again.total_fen == 3990
    third = buy(chain, member_no(chain, 3), goods, 1, "k4")
    assert third.total_fen == 3990 - 300
    assert buy(chain, member_no(chain, 4), goods, 1, "k5").total_fen == 3990  # budgets spent
    assert InstantDiscountUse.objects.count() == 3
    cancel_unpaid_order(order=first, member=first.member)  # the ¥8 goes back to the budget
    assert buy(chain, member_no(chain, 5), goods, 2, "k6").total_fen == 7980 - 800
    assert CouponTemplate.objects.get(name="满79减8").issued == 1


def test_stacking_rules(chain: Chain, goods: Any) -> None:
    coupon_tpl = template_for(chain)
    template_for(
        chain, name="不叠加立减", kind="instant", discount_fen=500, min_spend_fen=0, valid_days=None
    )
    member = member_no(chain, 1)
    coupon = claim_coupon_for_member(member=member, template_id=coupon_tpl.pk)
    alone = buy(chain, member, goods, 2, "k1", coupon_id=coupon.pk)
    assert alone.total_fen == 7980 - 1000  # the coupon; the instant one does not stack
    cancel_unpaid_order(order=alone, member=member)
    template_for(
        chain,
        name="可叠加立减",
        kind="instant",
        discount_fen=200,
        min_spend_fen=0,
        valid_days=None,
        stacks_with_coupon=True,
    )
    both = buy(chain, member, goods, 2, "k2", coupon_id=coupon.pk)
    assert both.total_fen == 7980 - 1000 - 200
    plain = buy(chain, member_no(chain, 2), goods, 2, "k3")  # no coupon: the best instant one
    assert plain.total_fen == 7980 - 500


def test_promotional_lines_take_coupons_only_when_allowed(chain: Chain, goods: Any) -> None:
    sale = sale_for(chain, goods, price_fen=2990, per_member_limit=2, per_order_limit=2)
    member = member_no(chain, 1)
    plain = claim_coupon_for_member(
        member=member, template_id=template_for(chain, min_spend_fen=0, discount_fen=500).pk
    )
    with pytest.raises(DomainError) as refused:
        buy(chain, member, goods, 1, "k1", coupon_id=plain.pk, flash_sale_id=sale.pk)
    assert refused.value.code == "coupon_not_applicable"
    allowed = claim_coupon_for_member(
        member=member,
        template_id=template_for(
            chain, name="秒杀可用", min_spend_fen=0, discount_fen=500, applies_to_promotions=True
        ).pk,
    )
    order = buy(chain, member, goods, 1, "k2", coupon_id=allowed.pk, flash_sale_id=sale.pk)
    assert order.total_fen == 2990 - 500
    campaign = campaign_for(chain, goods)
    with pytest.raises(DomainError) as team:
        buy(chain, member, goods, 1, "k3", coupon_id=plain.pk, group_buy_id=campaign.pk)
    assert team.value.code == "coupon_not_applicable"
    assert Order.objects.count() == 1


def test_an_order_always_leaves_a_fen_to_pay(chain: Chain) -> None:
    cheap = make_sku(chain, code="GUM-1", price_fen=300, stock={chain.store_a: 10})
    member = member_no(chain, 1)
    coupon = claim_coupon_for_member(
        member=member, template_id=template_for(chain, min_spend_fen=0, discount_fen=1000).pk
    )
    order = buy(chain, member, cheap, 1, "k1", coupon_id=coupon.pk)
    assert order.total_fen == 1
    coupon.refresh_from_db()
    assert coupon.discount_fen == 299


def test_claim_window_and_foreign_templates(chain: Chain) -> None:
    member = member_no(chain, 1)
    later = template_for(
        chain,
        starts_at=timeutil.now() + timedelta(hours=1),
        ends_at=timeutil.now() + timedelta(days=1),
    )
    with pytest.raises(DomainError) as early:
        claim_coupon_for_member(member=member, template_id=later.pk)
    assert early.value.code == "coupon_not_started"
    ended = template_for(chain, name="已结束")
    CouponTemplate.objects.filter(pk=ended.pk).update(
        starts_at=timeutil.now() - timedelta(days=2), ends_at=timeutil.now()
    )
    with pytest.raises(DomainError) as late:
        claim_coupon_for_member(member=member, template_id=ended.pk)
    assert late.value.code == "coupon_claim_ended"
    one = template_for(chain, name="限量1张", total_quantity=1)
    claim_coupon_for_member(member=member, template_id=one.pk)
    with pytest.raises(DomainError) as gone:
        claim_coupon_for_member(member=member_no(chain, 2), template_id=one.pk)
    assert gone.value.code == "coupon_sold_out"
    instant = template_for(chain, name="立减", kind="instant", valid_days=None)
    foreign = build_chain_b_campaign()  # another chain: its templates are not found
    foreign_tpl = CouponTemplate.objects.create(
        chain_id=foreign.chain_id,
        name="外连锁券",
        kind="coupon",
        discount_fen=100,
        total_quantity=5,
        per_member_limit=1,
        starts_at=timeutil.now() - timedelta(hours=1),
        ends_at=timeutil.now() + timedelta(days=1),
        valid_days=3,
    )
    for template_id in (instant.pk, foreign_tpl.pk, "1", 10**9):
        with pytest.raises(NotFound):
            claim_coupon_for_member(member=member, template_id=template_id)
    assert Coupon.objects.count() == 1
    assert CouponHolder.objects.filter(member=member_no(chain, 2)).count() == 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"discount_fen": 0}, "invalid_amount"),
        ({"discount_fen": -100}, "invalid_amount"),
        ({"discount_fen": 10.5}, "invalid_amount"),
        ({"discount_fen": 10**12}, "invalid_amount"),
        ({"min_spend_fen": -1}, "invalid_amount"),
        ({"min_spend_fen": 1000}, "invalid_amount"),  # not above the discount
        ({"total_quantity": 0}, "invalid_count"),
        ({"total_quantity": 10**9}, "invalid_count"),
        ({"per_member_limit": -1}, "invalid_count"),
        ({"valid_days": 0}, "invalid_count"),
        ({"valid_days": None}, "invalid_count"),
        ({"kind": "instant"}, "invalid_count"),  # valid_days given for an instant discount
        ({"kind": "cashback"}, "invalid_kind"),
        ({"stacks_with_coupon": True}, "invalid_stacking"),
        ({"name": " "}, "invalid_input"),
        ({"ends_at": timeutil.now() + timedelta(days=400)}, "invalid_window"),
    ],
)
def test_bad_templates_are_refused(chain: Chain, overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        template_for(chain, **overrides)
    assert refused.value.code == code
    assert not CouponTemplate.objects.exists()


def test_only_promotion_managers_create_templates(chain: Chain) -> None:
    with pytest.raises(PermissionDenied):
        template_for(chain, acting=chain.manager_a)
    assert not CouponTemplate.objects.exists()
