"""The group-buy (拼团) rules that ``place_order``, payments, refunds and pickups call.

Life of a seat: checkout holds a PENDING seat (the team the member clicked, or none to start
one) and claims the member's limit; the payment seats the payer with a guarded UPDATE
(``joined < size``) — in the team asked for, else in another open team at the store, else in a
new team the payer leads (likeshop's re-routing). The seat that fills a team makes it
SUCCEEDED in the same transaction. The sweep (``actions.sweep_group_buy_teams``) fails teams
past their deadline and opens one refund per seat.

Lock order, the same for every writer: order row → campaign row → team row → seat rows.
This module never calls a gateway and never imports ``orders.actions`` (which imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.members.models import Member
from shequn.orders.models import Order, Refund
from shequn.org.models import OrgNode

from .limits import claim_within_limit
from .models import (
    GroupBuy,
    GroupBuyBuyer,
    GroupBuySeat,
    GroupBuyTeam,
    SeatStatus,
    TeamStatus,
)

REROUTE_CANDIDATES = 5  # open teams tried before the payer starts a new one


@dataclass(frozen=True)
class GroupBuyOffer:
    campaign_id: int
    sku_id: int
    price_fen: int
    per_member_limit: int
    team_id: int | None


def group_buy_offer(
    *,
    campaign_id: object,
    team_id: object,
    member: Member,
    store: OrgNode,
    quantities: dict[int, int],
    now: datetime,
) -> GroupBuyOffer:
    """What buying into this group-buy (and team) means for this order, or why it cannot."""
    if isinstance(campaign_id, bool) or not isinstance(campaign_id, int):
        raise InvalidInput("拼团活动编号无效", code="invalid_group_buy")
    if team_id is not None and (isinstance(team_id, bool) or not isinstance(team_id, int)):
        raise InvalidInput("团编号无效", code="invalid_team")
    campaign = GroupBuy.objects.filter(pk=campaign_id, chain_id=member.chain_id).first()
    if campaign is None:
        raise NotFound("拼团活动不存在", code="unknown_group_buy")
    if campaign.cancelled_at is not None:
        raise RuleViolation("该拼团活动已取消", code="group_buy_cancelled")
    if now < campaign.starts_at:
        raise RuleViolation(
            f"拼团尚未开始, 开始时间 {timeutil.format_local(campaign.starts_at)}",
            code="group_buy_not_started",
        )
    if now >= campaign.ends_at:
        raise RuleViolation("拼团已结束", code="group_buy_ended")
    if set(quantities) != {campaign.sku_id}:
        raise InvalidInput("拼团订单只能包含该活动的商品", code="group_buy_sku_only")
    limit = min(campaign.per_order_limit, campaign.per_member_limit)
    if quantities[campaign.sku_id] > limit:
        raise RuleViolation(f"该拼团每单限购 {limit} 件", code="group_buy_order_limit")
    if team_id is not None:
        team = GroupBuyTeam.objects.filter(pk=team_id, campaign=campaign).first()
        if team is None:
            raise NotFound("团不存在", code="unknown_team")
        if team.store_id != store.pk:
            raise RuleViolation("该团在其他门店提货, 请在本店发起新团", code="team_other_store")
        if team.status == TeamStatus.SUCCEEDED or team.joined >= team.size:
            raise RuleViolation("该团已满, 可以参加其他团或发起新团", code="team_full")
        if team.status != TeamStatus.FORMING or team.deadline <= now:
            raise RuleViolation("该团已结束, 可以发起新团", code="team_closed")
        if GroupBuySeat.objects.filter(team=team, member=member, status=SeatStatus.SEATED).exists():
            raise RuleViolation("你已在该团中, 分享给好友来参团吧", code="already_in_team")
    return GroupBuyOffer(
        campaign.pk, campaign.sku_id, campaign.price_fen, campaign.per_member_limit, team_id
    )


def hold_seat(offer: GroupBuyOffer, *, order: Order, quantity: int) -> bool:
    """Inside ``place_order``'s transaction: claim the member's limit (a guarded upsert) and
    hold a seat request. False when the member is over the limit (the caller rolls back)."""
    if not claim_within_limit(
        GroupBuyBuyer,
        owner="campaign_id",
        counter="bought",
        owner_id=offer.campaign_id,
        member_id=order.member_id,
        quantity=quantity,
        limit=offer.per_member_limit,
    ):
        return False
    GroupBuySeat.objects.create(
        campaign_id=offer.campaign_id,
        order=order,
        member_id=order.member_id,
        quantity=quantity,
        wanted_team_id=offer.team_id,
    )
    return True


def release_group_buy(order: Order, *, unpaid: bool) -> None:
    """An order leaves the group-buy (closed unpaid, or refunded before pickup): its units go
    back to the member's limit. Call only under the order's own exactly-once transition."""
    seat = GroupBuySeat.objects.filter(order=order).first()
    if seat is None:
        return
    if unpaid:
        GroupBuySeat.objects.filter(pk=seat.pk, status=SeatStatus.PENDING).update(
            status=SeatStatus.CLOSED
        )
    released = GroupBuyBuyer.objects.filter(
        campaign_id=seat.campaign_id, member_id=seat.member_id, bought__gte=seat.quantity
    ).update(bought=F("bought") - seat.quantity)
    if released != 1:
        raise RuntimeError(f"group-buy counter missing for order {order.number}")


def seat_payer(order: Order, now: datetime) -> str | None:
    """Inside ``record_payment``'s transaction (order row locked): give the payer a seat.
    Returns None (not a group-buy order), ``seated``, ``completed`` (this seat filled the
    team), ``opened`` (a new team) or ``refund_due`` (the campaign is over: the sweep refunds)."""
    seat = (
        GroupBuySeat.objects.select_related("campaign")
        .filter(order=order, status=SeatStatus.PENDING)
        .first()
    )
    if seat is None:
        return None
    campaign = seat.campaign
    if seat.wanted_team_id is not None:
        outcome = _take_seat(seat, seat.wanted_team_id, now)
        if outcome is not None:
            return outcome
        # The team filled (or closed) meanwhile: re-route. Payers being re-routed queue on the
        # campaign row, so each sees the teams the ones before it opened (committed) and fills
        # them before opening yet another — 80 payers racing for one team of 10 end up in 8
        # full teams, not in dozens of lonely ones.
        GroupBuy.objects.select_for_update().filter(pk=campaign.pk).first()
        for team_id in _open_teams_with_room(seat, order.store_id, now):
            outcome = _take_seat(seat, team_id, now)
            if outcome is not None:
                return outcome
    if campaign.cancelled_at is not None or now >= campaign.ends_at:
        GroupBuySeat.objects.filter(pk=seat.pk).update(status=SeatStatus.REFUND_DUE)
        return "refund_due"
    team = GroupBuyTeam.objects.create(
        campaign=campaign,
        store_id=order.store_id,
        leader_id=seat.member_id,
        size=campaign.team_size,
        joined=1,
        deadline=now + timedelta(minutes=campaign.team_minutes),
        opened_at=now,
    )
    GroupBuySeat.objects.filter(pk=seat.pk).update(
        team=team, status=SeatStatus.SEATED, seated_at=now
    )
    record_audit(
        None,
        "promotions.team_opened",
        target=team,
        scope_path=order.store.path,
        details={"order": order.number, "deadline": team.deadline.isoformat()},
    )
    return "opened"


def _open_teams_with_room(seat: GroupBuySeat, store_id: int, now: datetime) -> list[int]:
    """The fullest open teams at the store that the payer is not in yet."""
    return list(
        GroupBuyTeam.objects.filter(
            campaign_id=seat.campaign_id,
            store_id=store_id,
            status=TeamStatus.FORMING,
            joined__lt=F("size"),
            deadline__gt=now,
        )
        .exclude(seats__member_id=seat.member_id, seats__status=SeatStatus.SEATED)
        .order_by("-joined", "deadline", "id")
        .values_list("pk", flat=True)[:REROUTE_CANDIDATES]
    )


def _take_seat(seat: GroupBuySeat, team_id: int, now: datetime) -> str | None:
    """The guarded UPDATE that hands out seats: of N+1 racing payers exactly N get one."""
    try:
        with transaction.atomic():  # a savepoint: a refused seat undoes its own increment
            taken = GroupBuyTeam.objects.filter(
                pk=team_id, status=TeamStatus.FORMING, joined__lt=F("size"), deadline__gt=now
            ).update(joined=F("joined") + 1)
            if not taken:
                return None
            GroupBuySeat.objects.filter(pk=seat.pk).update(
                team_id=team_id, status=SeatStatus.SEATED, seated_at=now
            )
    except IntegrityError:  # the member already holds a seat in this team (another order)
        return None
    if GroupBuyTeam.objects.filter(pk=team_id, status=TeamStatus.FORMING, joined=F("size")).update(
        status=TeamStatus.SUCCEEDED, closed_at=now
    ):
        team = GroupBuyTeam.objects.select_related("store").get(pk=team_id)
        record_audit(
            None,
            "promotions.team_succeeded",
            target=team,
            scope_path=team.store.path,
            details={"joined": team.joined},
        )
        return "completed"
    return "seated"


def on_refund_opened(order: Order, refund: Refund, now: datetime) -> None:
    """Inside the transaction of a refund that gives back all that was paid (order row locked).
    A payer refunded while the team is still forming leaves it — the seat frees up and, if they
    led it, the next member leads on with the same deadline. A seat waiting for its automatic
    refund is marked as refunded, so the sweep never opens a second refund. (A partial refund,
    say a clerk's compensation, changes nothing here: the payer stays in the team.)"""
    seat = GroupBuySeat.objects.filter(order=order).first()
    if seat is None:
        return
    if seat.status == SeatStatus.REFUND_DUE:
        GroupBuySeat.objects.filter(pk=seat.pk, status=SeatStatus.REFUND_DUE).update(
            status=SeatStatus.REFUND_OPENED, refund=refund
        )
        return
    if seat.status != SeatStatus.SEATED or seat.team_id is None:
        return
    team = GroupBuyTeam.objects.select_for_update().filter(pk=seat.team_id).first()
    if team is None or team.status != TeamStatus.FORMING:
        return  # the team is complete: an ordinary refund of an ordinary order
    GroupBuySeat.objects.filter(pk=seat.pk).update(status=SeatStatus.LEFT, refund=refund)
    GroupBuyTeam.objects.filter(pk=team.pk, joined__gte=1).update(joined=F("joined") - 1)
    if team.leader_id != seat.member_id:
        return
    heir = (
        GroupBuySeat.objects.filter(team=team, status=SeatStatus.SEATED)
        .order_by("seated_at", "id")
        .first()
    )
    if heir is not None:
        GroupBuyTeam.objects.filter(pk=team.pk).update(leader_id=heir.member_id)
    else:  # the last member left: nobody is waiting for this team any more
        GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.FORMING).update(
            status=TeamStatus.FAILED, closed_at=now
        )


def pickup_blocker(order: Order) -> str | None:
    """Why a paid group-buy order may not be handed over yet (its team has not succeeded)."""
    seat = GroupBuySeat.objects.select_related("team").filter(order=order).first()
    if seat is None:
        return None
    if seat.status == SeatStatus.SEATED and seat.team is not None:
        if seat.team.status == TeamStatus.SUCCEEDED:
            return None
        if seat.team.status == TeamStatus.FORMING:
            return f"拼团尚未成团({seat.team.joined}/{seat.team.size}), 成团后才能提货"
    return "拼团未成团, 该订单将自动退款, 不能提货"
