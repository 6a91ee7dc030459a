"""Group-buys (拼团): a payer starts or joins a team; a full team succeeds; a team past its
deadline fails and every payer gets exactly one refund (or, with an explicit threshold, it
succeeds with its real members); a payer whose team filled meanwhile is re-routed; a leader who
leaves hands the team on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.catalog.models import StockItem
from shequn.core import timeutil
from shequn.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from shequn.members.actions import find_or_register_member
from shequn.members.models import Member
from shequn.orders.actions import (
    LineRequest,
    RefundReport,
    cancel_unpaid_order,
    place_order,
    record_refund_result,
    request_member_refund,
    request_refund,
    verify_pickup,
)
from shequn.orders.models import Order, OrderStatus, Refund
from shequn.promotions.actions import (
    cancel_group_buy,
    create_group_buy,
    sweep_group_buy_teams,
)
from shequn.promotions.models import (
    GroupBuy,
    GroupBuyBuyer,
    GroupBuySeat,
    GroupBuyTeam,
    SeatStatus,
    TeamStatus,
)
from tests.conftest import Chain, make_sku, phone
from tests.orders.test_pickup import pay

pytestmark = pytest.mark.django_db


def campaign_for(chain: Chain, sku: Any, **overrides: Any) -> GroupBuy:
    now = timeutil.now()
    params: dict[str, Any] = {
        "acting": chain.hq_operator,
        "sku": sku,
        "name": "艾草贴三人团",
        "price_fen": 2990,
        "team_size": 3,
        "team_minutes": 60,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=1),
        "per_member_limit": 2,
        "per_order_limit": 2,
    }
    params.update(overrides)
    return create_group_buy(**params)


def member_no(chain: Chain, n: int, store: Any = None) -> Member:
    return find_or_register_member(store=store or chain.store_a, phone=phone(n)).member


def order_in(
    chain: Chain,
    campaign: GroupBuy,
    n: int,
    *,
    team: GroupBuyTeam | None = None,
    quantity: int = 1,
    store: Any = None,
) -> Order:
    return place_order(
        member=member_no(chain, n, store),
        store=store or chain.store_a,
        lines=[LineRequest(campaign.sku_id, quantity)],
        idempotency_key=f"gb-{campaign.pk}-{n}-{team.pk if team else 'new'}-{quantity}",
        group_buy_id=campaign.pk,
        team_id=team.pk if team else None,
    ).order


def paid_in(chain: Chain, campaign: GroupBuy, n: int, **kwargs: Any) -> Order:
    order = order_in(chain, campaign, n, **kwargs)
    assert pay(order, f"T{order.number}") == "paid"
    order.refresh_from_db()
    return order


def seat_of(order: Order) -> GroupBuySeat:
    return GroupBuySeat.objects.select_related("team").get(order=order)


def refund_succeeds(refund: Refund) -> str:
    return record_refund_result(
        RefundReport(
            notification_id=f"EV-{refund.out_refund_no}",
            event_type="REFUND.SUCCESS",
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            mchid="m",
        ),
        expected_mchid="m",
    )


@pytest.fixture
def shop(chain: Chain) -> tuple[Chain, GroupBuy]:
    sku = make_sku(chain, stock={chain.store_a: 50, chain.store_b: 50})
    return chain, campaign_for(chain, sku)


def test_a_team_fills_and_only_then_may_be_picked_up(shop: tuple[Chain, GroupBuy]) -> None:
    chain, campaign = shop
    leader = paid_in(chain, campaign, 1)
    assert leader.total_fen == 2990
    team = seat_of(leader).team
    assert team is not None
    assert (team.joined, team.size, team.status, team.leader_id) == (
        1,
        3,
        TeamStatus.FORMING,
        leader.member_id,
    )
    assert team.deadline == team.opened_at + timedelta(minutes=60)
    with pytest.raises(DomainError) as blocked:
        verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=leader.pickup_code)
    assert blocked.value.code == "team_not_succeeded"
    assert "1/3" in blocked.value.message

    paid_in(chain, campaign, 2, team=team)
    last = paid_in(chain, campaign, 3, team=team, quantity=2)
    team.refresh_from_db()
    assert (team.joined, team.status) == (3, TeamStatus.SUCCEEDED)
    assert team.closed_at is not None
    assert seat_of(last).status == SeatStatus.SEATED
    done = verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=leader.pickup_code)
    assert done.status == OrderStatus.FULFILLED


def test_a_team_past_its_deadline_refunds_every_payer_exactly_once(
    shop: tuple[Chain, GroupBuy],
) -> None:
    chain, campaign = shop
    first = paid_in(chain, campaign, 1, quantity=2)
    team = seat_of(first).team
    second = paid_in(chain, campaign, 2, team=team)
    unpaid = order_in(chain, campaign, 3, team=team)  # never pays: closes on its own timeout
    GroupBuyTeam.objects.filter(pk=team.pk).update(deadline=timeutil.now() - timedelta(seconds=1))

    assert sweep_group_buy_teams() == 1 + 2  # one team decided, two refunds opened
    assert sweep_group_buy_teams() == 0  # nothing left: a second run opens nothing
    team.refresh_from_db()
    assert team.status == TeamStatus.FAILED
    refunds = {r.order_id: r for r in Refund.objects.all()}
    assert set(refunds) == {first.pk, second.pk}
    assert refunds[first.pk].amount_fen == 2 * 2990
    assert refunds[first.pk].reason == "拼团未成团, 自动全额退款"
    assert {seat_of(o).status for o in (first, second)} == {SeatStatus.REFUND_OPENED}
    assert seat_of(unpaid).status == SeatStatus.PENDING

    for refund in refunds.values():  # the gateway reports success: units and limits come back
        assert refund_succeeds(refund) == "succeeded"
    assert {o.status for o in Order.objects.filter(pk__in=[first.pk, second.pk])} == {
        OrderStatus.REFUNDED
    }
    item = StockItem.objects.get(store=chain.store_a, sku=campaign.sku)
    assert item.quantity_allocated == 1  # only the unpaid order's unit is still held
    cancel_unpaid_order(order=unpaid, member=unpaid.member)
    assert StockItem.objects.get(pk=item.pk).quantity_allocated == 0
    assert set(GroupBuyBuyer.objects.values_list("bought", flat=True)) == {0}
    assert seat_of(unpaid).status == SeatStatus.CLOSED


def test_explicit_threshold_succeeds_with_real_members_only(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 50})
    campaign = campaign_for(
        chain, sku, team_size=5, unfilled_policy="auto_succeed", min_team_size=2
    )
    pair = paid_in(chain, campaign, 1)
    paid_in(chain, campaign, 2, team=seat_of(pair).team)
    alone = paid_in(chain, campaign, 3)  # starts a second team, stays alone
    past = timeutil.now() - timedelta(seconds=1)
    GroupBuyTeam.objects.update(deadline=past)
    sweep_group_buy_teams()
    reached, short = seat_of(pair).team, seat_of(alone).team
    reached.refresh_from_db()
    short.refresh_from_db()
    assert (reached.status, reached.joined, reached.size) == (TeamStatus.SUCCEEDED, 2, 5)
    assert short.status == TeamStatus.FAILED
    assert list(Refund.objects.values_list("order_id", flat=True)) == [alone.pk]
    # no fabricated members: the seats are the real payers
    assert GroupBuySeat.objects.filter(team=reached, status=SeatStatus.SEATED).count() == 2


def test_a_payer_whose_team_filled_is_moved_to_another_team_or_a_new_one(
    shop: tuple[Chain, GroupBuy],
) -> None:
    chain, campaign = shop
    team = seat_of(paid_in(chain, campaign, 1)).team
    other = seat_of(paid_in(chain, campaign, 2)).team  # a second open team at the store
    late = [order_in(chain, campaign, n, team=team) for n in (3, 4, 5, 6)]  # all click "join"
    for order in late:
        assert pay(order, f"T{order.number}") == "paid"
    placed = {order.pk: seat_of(order).team for order in late}
    team.refresh_from_db()
    other.refresh_from_db()
    assert (team.joined, team.status) == (3, TeamStatus.SUCCEEDED)
    assert (other.joined, other.status) == (3, TeamStatus.SUCCEEDED)  # overflow went here
    assert [placed[o.pk].pk for o in late] == [team.pk, team.pk, other.pk, other.pk]

    # both full now: the next payer who clicked a full team opens a new one and leads it
    latest = order_in(chain, campaign, 7)
    GroupBuySeat.objects.filter(order=latest).update(wanted_team=team)
    pay(latest, f"T{latest.number}")
    new_team = seat_of(latest).team
    assert new_team.pk not in (team.pk, other.pk)
    assert (new_team.joined, new_team.leader_id) == (1, latest.member_id)


def test_a_leader_who_leaves_hands_the_team_on_with_its_deadline(
    shop: tuple[Chain, GroupBuy],
) -> None:
    chain, campaign = shop
    leader = paid_in(chain, campaign, 1)
    team = seat_of(leader).team
    follower = paid_in(chain, campaign, 2, team=team)
    deadline = team.deadline
    refund = request_member_refund(member=leader.member, order=leader, reason="不想要了")
    team.refresh_from_db()
    assert (team.joined, team.leader_id, team.deadline) == (1, follower.member_id, deadline)
    assert team.status == TeamStatus.FORMING
    left = seat_of(leader)
    assert (left.status, left.refund_id) == (SeatStatus.LEFT, refund.pk)
    # the freed seat can be taken again
    paid_in(chain, campaign, 3, team=team)
    paid_in(chain, campaign, 4, team=team)
    team.refresh_from_db()
    assert (team.joined, team.status) == (3, TeamStatus.SUCCEEDED)
    # the last member of a team leaving closes it; nobody is owed anything more
    lonely = paid_in(chain, campaign, 5)
    request_member_refund(member=lonely.member, order=lonely, reason="不拼了")
    assert seat_of(lonely).team.status == TeamStatus.FAILED
    sweep_group_buy_teams()
    assert Refund.objects.filter(order=lonely).count() == 1


def test_refund_owed_but_already_given_is_not_doubled(shop: tuple[Chain, GroupBuy]) -> None:
    chain, campaign = shop
    order = paid_in(chain, campaign, 1)
    GroupBuyTeam.objects.update(deadline=timeutil.now() - timedelta(seconds=1))
    from shequn.promotions.actions import _decide_team

    _decide_team(seat_of(order).team.pk, timeutil.now())
    assert seat_of(order).status == SeatStatus.REFUND_DUE
    # the member asks before the sweep gets there: that refund is the one the seat was owed
    own = request_member_refund(member=order.member, order=order, reason="等不及了")
    assert sweep_group_buy_teams() == 0
    assert list(Refund.objects.values_list("pk", flat=True)) == [own.pk]
    assert seat_of(order).refund_id == own.pk


def test_a_partial_refund_keeps_the_seat_and_the_sweep_refunds_the_rest(
    shop: tuple[Chain, GroupBuy],
) -> None:
    chain, campaign = shop
    order = paid_in(chain, campaign, 1, quantity=2)  # ¥59.80
    team = seat_of(order).team
    request_refund(acting=chain.manager_a, order=order, amount_fen=500, reason="包装压痕补偿")
    team.refresh_from_db()
    assert (seat_of(order).status, team.joined) == (SeatStatus.SEATED, 1)
    GroupBuyTeam.objects.filter(pk=team.pk).update(deadline=timeutil.now() - timedelta(seconds=1))
    assert sweep_group_buy_teams() == 2
    owed = Refund.objects.filter(order=order).order_by("id")
    assert [r.amount_fen for r in owed] == [500, 2 * 2990 - 500]
    assert seat_of(order).refund_id == owed.last().pk  # type: ignore[union-attr]


def test_limits_and_own_team(shop: tuple[Chain, GroupBuy]) -> None:
    chain, campaign = shop
    leader = paid_in(chain, campaign, 1)
    team = seat_of(leader).team
    with pytest.raises(DomainError) as own:
        order_in(chain, campaign, 1, team=team)
    assert own.value.code == "already_in_team"
    with pytest.raises(DomainError) as over:
        order_in(chain, campaign, 1, quantity=2)  # holds 1, limit 2: 3 is over
    assert over.value.code == "group_buy_member_limit"
    with pytest.raises(DomainError) as per_order:
        order_in(chain, campaign, 2, quantity=3)
    assert per_order.value.code == "group_buy_order_limit"
    assert Order.objects.count() == 1


def test_campaign_over_at_payment_refunds_instead_of_opening_a_team(
    shop: tuple[Chain, GroupBuy],
) -> None:
    chain, campaign = shop
    order = order_in(chain, campaign, 1)
    GroupBuy.objects.filter(pk=campaign.pk).update(
        starts_at=timeutil.now() - timedelta(days=2), ends_at=timeutil.now() - timedelta(hours=1)
    )
    assert pay(order, f"T{order.number}") == "paid"
    assert seat_of(order).status == SeatStatus.REFUND_DUE
    assert GroupBuyTeam.objects.count() == 0
    assert sweep_group_buy_teams() == 1
    assert Refund.objects.get().order_id == order.pk


def test_cancelled_campaign_fails_forming_teams_even_with_a_threshold(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 50})
    campaign = campaign_for(
        chain, sku, team_size=4, unfilled_policy="auto_succeed", min_team_size=2
    )
    first = paid_in(chain, campaign, 1)
    paid_in(chain, campaign, 2, team=seat_of(first).team)
    cancel_group_buy(acting=chain.hq_operator, campaign=campaign)
    with pytest.raises(DomainError) as closed:
        order_in(chain, campaign, 3)
    assert closed.value.code == "group_buy_cancelled"
    assert sweep_group_buy_teams() == 1 + 2
    assert seat_of(first).team.status == TeamStatus.FAILED


def test_bad_orders_are_refused_and_write_nothing(shop: tuple[Chain, GroupBuy]) -> None:
    chain, campaign = shop
    team = seat_of(paid_in(chain, campaign, 1)).team
    before = (Order.objects.count(), GroupBuySeat.objects.count(), GroupBuyTeam.objects.count())
    foreign = build_chain_b_campaign()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"group_buy_id": foreign.pk}, "unknown_group_buy"),
        ({"group_buy_id": "1"}, "invalid_group_buy"),
        ({"group_buy_id": campaign.pk, "team_id": 10**9}, "unknown_team"),
        ({"group_buy_id": campaign.pk, "team_id": True}, "invalid_team"),
        ({"team_id": team.pk}, "invalid_team"),
        ({"group_buy_id": campaign.pk, "flash_sale_id": 1}, "promotion_conflict"),
    ]
    member = member_no(chain, 9)
    for extra, code in cases:
        with pytest.raises(DomainError) as refused:
            place_order(
                member=member,
                store=chain.store_a,
                lines=[LineRequest(campaign.sku_id, 1)],
                idempotency_key="bad",
                **extra,
            )
        assert refused.value.code == code, extra
    # a team at another store, and a basket with something else in it
    with pytest.raises(DomainError) as elsewhere:
        order_in(chain, campaign, 9, team=team, store=chain.store_b)
    assert elsewhere.value.code == "team_other_store"
    other_sku = make_sku(chain, code="OTHER-1", stock={chain.store_a: 5})
    with pytest.raises(InvalidInput) as mixed:
        place_order(
            member=member,
            store=chain.store_a,
            lines=[LineRequest(campaign.sku_id, 1), LineRequest(other_sku.pk, 1)],
            idempotency_key="mixed",
            group_buy_id=campaign.pk,
        )
    assert mixed.value.code == "group_buy_sku_only"
    for window, code in (
        ((timedelta(hours=1), timedelta(hours=2)), "group_buy_not_started"),
        ((timedelta(days=-2), timedelta(seconds=-1)), "group_buy_ended"),
    ):
        GroupBuy.objects.filter(pk=campaign.pk).update(
            starts_at=timeutil.now() + window[0], ends_at=timeutil.now() + window[1]
        )
        with pytest.raises(DomainError) as timing:
            order_in(chain, campaign, 9)
        assert timing.value.code == code
    GroupBuyTeam.objects.filter(pk=team.pk).update(deadline=timeutil.now())
    GroupBuy.objects.filter(pk=campaign.pk).update(ends_at=timeutil.now() + timedelta(days=1))
    with pytest.raises(DomainError) as expired:
        order_in(chain, campaign, 9, team=team)
    assert expired.value.code == "team_closed"
    after = (Order.objects.count(), GroupBuySeat.objects.count(), GroupBuyTeam.objects.count())
    assert after == before
    assert GroupBuyBuyer.objects.filter(member=member).count() == 0


def build_chain_b_campaign() -> GroupBuy:
    from shequn.org import actions as org
    from shequn.org.models import NodeKind
    from shequn.org.roles import Role

    other = org.create_chain(name="另一连锁", code="other-chain")
    admin = org.create_staff(
        acting=None,
        node=other,
        role=Role.HQ_ADMIN,
        username="other_admin",
        password="Other-pass-2026!",  # noqa: S106
        display_name="别家",
    )
    org.create_node(acting=admin, parent=other, name="别家店", kind=NodeKind.STORE, code="o-1")
    from shequn.catalog import actions as catalog

    product = catalog.create_product(
        acting=admin,
        supplier=catalog.create_supplier(acting=admin, name="别家供应商"),
        name="别家商品",
        pyramid_role="traffic",
    )
    sku = catalog.add_sku(acting=admin, product=product, code="O-1", price_fen=5000)
    now = timeutil.now()
    return create_group_buy(
        acting=admin,
        sku=sku,
        name="别家拼团",
        price_fen=4000,
        team_size=2,
        team_minutes=30,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=1),
        per_member_limit=1,
        per_order_limit=1,
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"price_fen": -1}, "invalid_amount"),
        ({"price_fen": 3990}, "group_price_not_lower"),
        ({"price_fen": 29.9}, "invalid_amount"),
        ({"team_size": 1}, "invalid_count"),
        ({"team_size": 10_000}, "invalid_count"),
        ({"team_minutes": 1}, "invalid_count"),
        ({"team_minutes": 10**7}, "invalid_count"),
        ({"per_member_limit": 0}, "invalid_count"),
        ({"unfilled_policy": "fake_members"}, "invalid_policy"),
        ({"min_team_size": 2}, "invalid_policy"),
        ({"unfilled_policy": "auto_succeed", "min_team_size": 3}, "invalid_policy"),
        ({"unfilled_policy": "auto_succeed", "min_team_size": 1}, "invalid_policy"),
        ({"unfilled_policy": "auto_succeed"}, "invalid_count"),
        ({"ends_at": timeutil.now() - timedelta(hours=1)}, "invalid_window"),
    ],
)
def test_bad_campaigns_are_refused(chain: Chain, overrides: dict[str, Any], code: str) -> None:
    sku = make_sku(chain, stock={chain.store_a: 5})
    with pytest.raises(InvalidInput) as refused:
        campaign_for(chain, sku, **overrides)
    assert refused.value.code == code
    assert GroupBuy.objects.count() == 0


def test_only_promotion_managers_create_and_only_in_their_chain(chain: Chain) -> None:
    sku = make_sku(chain, stock={chain.store_a: 5})
    with pytest.raises(PermissionDenied):
        campaign_for(chain, sku, acting=chain.manager_a)
    foreign = build_chain_b_campaign()
    with pytest.raises(NotFound):
        cancel_group_buy(acting=chain.hq_operator, campaign=foreign)
    assert GroupBuy.objects.filter(chain=chain.hq).count() == 0
