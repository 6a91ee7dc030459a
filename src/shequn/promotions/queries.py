"""Reads of promotions, scoped to the acting staff member: campaigns are chain-wide (for the
chain's own staff: not for a supplier's account, which sits at the root too); teams, and the
counts of teams a campaign shows, only within the caller's part of the tree."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import get_scoped, scoped

from .models import (
    CouponTemplate,
    FlashSale,
    GroupBuy,
    GroupBuyTeam,
    PromotionSchedule,
    TeamStatus,
)


def visible_flash_sales(staff: Staff) -> QuerySet[FlashSale]:
    return scoped(
        FlashSale.objects.select_related("sku__product").prefetch_related("quotas__store"),
        staff,
        Perm.VIEW_PROMOTIONS,
    )


def access_flash_sale(staff: Staff, sale_id: object) -> FlashSale:
    return get_scoped(visible_flash_sales(staff), staff, sale_id)


def visible_group_buys(staff: Staff) -> QuerySet[GroupBuy]:
    """The chain's group-buys, each with how its teams stand in the caller's stores."""
    mine = Q(teams__store__path__startswith=staff.node.path)
    return scoped(
        GroupBuy.objects.select_related("sku__product"), staff, Perm.VIEW_PROMOTIONS
    ).annotate(
        teams_forming=Count("teams", filter=mine & Q(teams__status=TeamStatus.FORMING)),
        teams_succeeded=Count("teams", filter=mine & Q(teams__status=TeamStatus.SUCCEEDED)),
        teams_failed=Count("teams", filter=mine & Q(teams__status=TeamStatus.FAILED)),
    )


def access_group_buy(staff: Staff, campaign_id: object) -> GroupBuy:
    return get_scoped(visible_group_buys(staff), staff, campaign_id)


def visible_teams(staff: Staff) -> QuerySet[GroupBuyTeam]:
    """Teams at the caller's stores (a cashier needs to know a team formed before a pickup)."""
    return scoped(
        GroupBuyTeam.objects.select_related("store", "leader", "campaign"),
        staff,
        Perm.VIEW_ORDERS,
    )


def access_team(staff: Staff, team_id: object) -> GroupBuyTeam:
    return get_scoped(visible_teams(staff), staff, team_id, Perm.VIEW_ORDERS)


def visible_coupon_templates(staff: Staff) -> QuerySet[CouponTemplate]:
    return scoped(
        CouponTemplate.objects.prefetch_related("products", "categories"),
        staff,
        Perm.VIEW_PROMOTIONS,
    )


def access_coupon_template(staff: Staff, template_id: object) -> CouponTemplate:
    return get_scoped(visible_coupon_templates(staff), staff, template_id)


def visible_schedules(staff: Staff) -> QuerySet[PromotionSchedule]:
    return scoped(
        PromotionSchedule.objects.select_related("sku__product").prefetch_related("groups"),
        staff,
        Perm.VIEW_PROMOTIONS,
    )


def access_schedule(staff: Staff, schedule_id: object) -> PromotionSchedule:
    return get_scoped(visible_schedules(staff), staff, schedule_id)
