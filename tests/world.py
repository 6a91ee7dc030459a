"""A world with data in store A and in store B: the fixture for isolation tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from shequn.catalog.models import Product, Sku, Supplier
from shequn.core import timeutil
from shequn.demand.models import (
    Message,
    ModerationCase,
    ProductionLine,
    ProductionOrder,
    Proposal,
    ProposalStatus,
    Topic,
)
from shequn.groups import actions as group_actions
from shequn.groups.models import CustomerGroup, GroupMembership, Invitation, RecruitmentReward
from shequn.members import actions as member_actions
from shequn.members.models import Member
from shequn.orders.actions import LineRequest, place_order
from shequn.orders.models import Order
from shequn.promotions.actions import (
    create_coupon_template,
    create_flash_sale,
    create_group_buy,
)
from shequn.promotions.calendar import create_schedule
from shequn.promotions.models import (
    CouponTemplate,
    FlashSale,
    GroupBuy,
    GroupBuySeat,
    GroupBuyTeam,
    PromotionSchedule,
)
from shequn.referrals.actions import apply_as_sharer, decide_sharer
from shequn.referrals.models import Sharer
from shequn.shop.actions import push_product_card
from tests.conftest import Chain, build_chain, make_group, make_sku, staff_code, vouched
from tests.orders.test_pickup import pay

# Strings that exist only in store B's data: none may appear in what store A's staff get back.
B_MARKERS = ("B店专属群", "乙会员", "13900009999", "o-openid-b", "B店素材", "外连锁商品")


@dataclass
class World:
    chain: Chain
    group_a: CustomerGroup
    group_b: CustomerGroup
    member_a: Member
    member_b: Member
    membership_a: GroupMembership
    membership_b: GroupMembership
    invitation_a: Invitation
    invitation_b: Invitation
    reward_b: RecruitmentReward
    member_b_token: str
    sku: Sku  # this chain's SKU, stocked in both stores
    order_a: Order
    order_b: Order
    foreign_product: Product  # another chain's: the catalog is chain-wide, never cross-chain
    foreign_sku: Sku
    foreign_sale: FlashSale  # another chain's flash sale
    team_b: GroupBuyTeam  # a group-buy team at store B, led by member B
    foreign_group_buy: GroupBuy  # another chain's group-buy
    foreign_coupon: CouponTemplate  # another chain's coupon template
    foreign_schedule: PromotionSchedule  # another chain's weekly schedule
    sharer_b: Sharer  # member B, an approved sharer of store B
    message_b: Message  # an ad member B posted in store B's group
    case_b: ModerationCase  # ... and the case it opened
    foreign_topic: Topic  # another chain's demand topic
    proposal_b: Proposal  # a C2B proposal answering store B's group (HQ and its supplier only)
    delivery_b: ProductionLine  # its production delivery to store B


def build_world() -> World:
    chain = build_chain()
    group_a = make_group(chain.manager_a, chain.store_a, name="A店宝妈群")
    group_b = make_group(chain.manager_b, chain.store_b, name="B店专属群")
    invitation_a = staff_code(chain.cashier_a, group_a)
    invitation_b = staff_code(chain.cashier_b, group_b)
    joined_a = group_actions.join_by_invitation(
        code=group_actions.invitation_code(invitation_a),
        proof=vouched(group_actions.invitation_code(invitation_a), "13900001111"),
        name="甲会员",
    )
    joined_b = group_actions.join_by_invitation(
        code=group_actions.invitation_code(invitation_b),
        proof=vouched(group_actions.invitation_code(invitation_b), "13900009999"),
        name="乙会员",
    )
    member_actions.attach_identity(
        acting=chain.admin, member=joined_b.member, channel="wechat_openid", value="o-openid-b"
    )
    assert joined_b.reward is not None
    sku = make_sku(chain, code="W-1", stock={chain.store_a: 10, chain.store_b: 10})
    order_a = place_order(
        member=joined_a.member,
        store=chain.store_a,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="a",
    ).order
    order_b = place_order(
        member=joined_b.member,
        store=chain.store_b,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="b",
        content_ref="B店素材",
    ).order
    push_product_card(
        acting=chain.manager_b, product=sku.product, group_ids=[group_b.pk], headline="B店素材卡片"
    )
    other = build_chain()
    foreign_sku = make_sku(other, code="F-1")
    Product.objects.filter(pk=foreign_sku.product_id).update(name="外连锁商品")
    now = timeutil.now()
    foreign_sale = create_flash_sale(
        acting=other.hq_operator,
        sku=foreign_sku,
        name="外连锁商品秒杀",
        price_fen=1,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        per_member_limit=1,
        per_order_limit=1,
        chain_quota=10,
    )
    group_buy = create_group_buy(
        acting=chain.hq_operator,
        sku=sku,
        name="本连锁拼团",
        price_fen=1,
        team_size=3,
        team_minutes=60,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        per_member_limit=1,
        per_order_limit=1,
    )
    team_order_b = place_order(
        member=joined_b.member,
        store=chain.store_b,
        lines=[LineRequest(sku.pk, 1)],
        idempotency_key="team-b",
        group_buy_id=group_buy.pk,
    ).order
    pay(team_order_b, "T-team-b")
    foreign_group_buy = create_group_buy(
        acting=other.hq_operator,
        sku=foreign_sku,
        name="外连锁商品拼团",
        price_fen=1,
        team_size=2,
        team_minutes=60,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        per_member_limit=1,
        per_order_limit=1,
    )
    foreign_coupon = create_coupon_template(
        acting=other.hq_operator,
        name="外连锁商品满减券",
        kind="coupon",
        discount_fen=100,
        total_quantity=10,
        per_member_limit=1,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        valid_days=1,
        products=[foreign_sku.product],
    )
    foreign_schedule = create_schedule(
        acting=other.hq_operator,
        name="外连锁商品周三秒杀",
        kind="flash_sale",
        sku=foreign_sku,
        price_fen=1,
        weekdays=(3,),
        start_time=time(10, 0),
        duration_minutes=60,
        per_member_limit=1,
        per_order_limit=1,
        chain_quota=10,
    )
    sharer_b = apply_as_sharer(member=joined_b.member)
    decide_sharer(acting=chain.manager_b, sharer=sharer_b, approve=True)
    message_b = Message.objects.create(
        chain=chain.hq,
        group=group_b,
        platform="wecom",
        platform_msg_id="msg-b-1",
        sender_member=joined_b.member,
        sent_at=now,
        msg_type="text",
        content="B店专属群 兼职日结 加我vx: bshop888",
        label="ad",
        label_score=1.0,
    )
    case_b = ModerationCase.objects.create(
        message=message_b, group=group_b, member=joined_b.member, reason="ad"
    )
    foreign_topic = Topic.objects.create(
        chain=other.hq,
        title="外连锁商品 · 价格",
        anchor_kind="keyword",
        keyword="外连锁商品",
        anchor_key="k:外连锁商品",
        aspect="price",
    )
    topic_b = Topic.objects.create(
        chain=chain.hq,
        title="B店专属群 · 包装/规格",
        anchor_kind="keyword",
        keyword="B店专属",
        anchor_key="k:B店专属",
        aspect="packaging",
    )
    maker = Supplier.objects.create(chain=chain.hq, name="B店专属群供应商")
    proposal_b = Proposal.objects.create(
        chain=chain.hq,
        topic=topic_b,
        supplier=maker,
        title="B店专属群 定制装",
        spec="3贴/盒",
        target_price_fen=1990,
        deposit_fen=500,
        min_units=1,
        deadline=now - timedelta(hours=1),
        status=ProposalStatus.SUCCEEDED,
        drafted_by=chain.admin.user,
    )
    production_b = ProductionOrder.objects.create(
        proposal=proposal_b, supplier=maker, number="P-B-1", total_units=1
    )
    delivery_b = ProductionLine.objects.create(
        production_order=production_b, store=chain.store_b, quantity=1
    )
    return World(
        chain=chain,
        group_a=group_a,
        group_b=group_b,
        member_a=joined_a.member,
        member_b=joined_b.member,
        membership_a=joined_a.membership,
        membership_b=joined_b.membership,
        invitation_a=invitation_a,
        invitation_b=invitation_b,
        reward_b=joined_b.reward,
        member_b_token=joined_b.member_token,
        sku=sku,
        order_a=order_a,
        order_b=order_b,
        foreign_product=foreign_sku.product,
        foreign_sku=foreign_sku,
        foreign_sale=foreign_sale,
        team_b=GroupBuySeat.objects.get(order=team_order_b).team,  # type: ignore[arg-type]
        foreign_group_buy=foreign_group_buy,
        foreign_coupon=foreign_coupon,
        foreign_schedule=foreign_schedule,
        sharer_b=sharer_b,
        message_b=message_b,
        case_b=case_b,
        foreign_topic=foreign_topic,
        proposal_b=proposal_b,
        delivery_b=delivery_b,
    )
