"""Roles and what each may do. The one table of permissions; code asks `has_perm(role, P)`."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    HQ_ADMIN = "hq_admin", "总部管理员"
    HQ_OPERATOR = "hq_operator", "总部运营"
    REGION_MANAGER = "region_manager", "大区经理"
    STORE_MANAGER = "store_manager", "店长"
    GROUP_OPERATOR = "group_operator", "社群运营(小步)"
    CASHIER = "cashier", "收银员"
    SUPPLIER = "supplier", "供应商"


class Perm(StrEnum):
    MANAGE_ORG = "manage_org"  # create and rename org nodes
    MANAGE_STAFF = "manage_staff"  # create staff accounts below the own node
    VIEW_GROUPS = "view_groups"
    MANAGE_GROUPS = "manage_groups"
    VIEW_MEMBERS = "view_members"
    MANAGE_MEMBERS = "manage_members"
    VIEW_PII = "view_pii"  # unmasked phone numbers (PIPL art. 51: least privilege)
    CREATE_INVITATIONS = "create_invitations"
    VIEW_REWARDS = "view_rewards"  # everybody's rewards in scope (own rewards are always visible)
    VIEW_AUDIT = "view_audit"
    MANAGE_CATALOG = "manage_catalog"  # suppliers, products, SKUs, prices (HQ)
    MANAGE_STOCK = "manage_stock"  # adjust and transfer stock in the own subtree
    VIEW_STOCK = "view_stock"  # stock in scope (suppliers: their own products' only)
    VIEW_ORDERS = "view_orders"
    MANAGE_ORDERS = "manage_orders"  # cancel, refund
    FULFIL_ORDERS = "fulfil_orders"  # verify pickup codes at the counter (核销)
    PUSH_CARDS = "push_cards"  # push product cards into the groups in scope
    MANAGE_PROMOTIONS = "manage_promotions"  # flash sales, group-buys, coupons (HQ)
    VIEW_PROMOTIONS = "view_promotions"  # the chain's campaigns and calendar (not suppliers)
    MANAGE_COMMISSIONS = "manage_commissions"  # commission rules (HQ)
    APPROVE_SHARERS = "approve_sharers"  # approve sharers' applications (HQ or their store)
    VIEW_MESSAGES = "view_messages"  # read the groups' messages (not cashiers, not suppliers)
    VIEW_DEMAND = "view_demand"  # the demand board (suppliers: their own categories only)
    MANAGE_DEMAND = "manage_demand"  # rename and merge topics; publish C2B proposals (HQ)
    DRAFT_PROPOSALS = "draft_proposals"  # draft a reverse-customization proposal from a topic


_ALL = frozenset(Perm)
ROLE_PERMS: dict[str, frozenset[Perm]] = {
    Role.HQ_ADMIN: _ALL,
    Role.HQ_OPERATOR: frozenset(
        {
            Perm.VIEW_DEMAND,
            Perm.MANAGE_DEMAND,
            Perm.DRAFT_PROPOSALS,
            Perm.VIEW_MESSAGES,
            Perm.MANAGE_PROMOTIONS,
            Perm.VIEW_PROMOTIONS,
            Perm.MANAGE_COMMISSIONS,
            Perm.APPROVE_SHARERS,
            Perm.PUSH_CARDS,
            Perm.MANAGE_CATALOG,
            Perm.MANAGE_STOCK,
            Perm.VIEW_STOCK,
            Perm.VIEW_ORDERS,
            Perm.MANAGE_ORDERS,
            Perm.VIEW_GROUPS,
            Perm.MANAGE_GROUPS,
            Perm.VIEW_MEMBERS,
            Perm.MANAGE_MEMBERS,
            Perm.CREATE_INVITATIONS,
            Perm.VIEW_REWARDS,
        }
    ),
    Role.REGION_MANAGER: frozenset(
        {
            Perm.VIEW_MESSAGES,
            Perm.PUSH_CARDS,
            Perm.MANAGE_STOCK,
            Perm.VIEW_STOCK,
            Perm.VIEW_ORDERS,
            Perm.VIEW_PROMOTIONS,
            Perm.MANAGE_STAFF,
            Perm.VIEW_GROUPS,
            Perm.MANAGE_GROUPS,
            Perm.VIEW_MEMBERS,
            Perm.CREATE_INVITATIONS,
            Perm.VIEW_REWARDS,
            Perm.VIEW_AUDIT,
        }
    ),
    Role.STORE_MANAGER: frozenset(
        {
            Perm.VIEW_MESSAGES,
            Perm.APPROVE_SHARERS,
            Perm.PUSH_CARDS,
            Perm.MANAGE_STOCK,
            Perm.VIEW_STOCK,
            Perm.VIEW_ORDERS,
            Perm.VIEW_PROMOTIONS,
            Perm.MANAGE_ORDERS,
            Perm.FULFIL_ORDERS,
            Perm.MANAGE_STAFF,
            Perm.VIEW_GROUPS,
            Perm.MANAGE_GROUPS,
            Perm.VIEW_MEMBERS,
            Perm.MANAGE_MEMBERS,
            Perm.VIEW_PII,
            Perm.CREATE_INVITATIONS,
            Perm.VIEW_REWARDS,
            Perm.VIEW_AUDIT,
        }
    ),
    Role.GROUP_OPERATOR: frozenset(
        {
            Perm.VIEW_MESSAGES,
            Perm.PUSH_CARDS,
            Perm.VIEW_STOCK,
            Perm.VIEW_ORDERS,
            Perm.VIEW_PROMOTIONS,
            Perm.FULFIL_ORDERS,
            Perm.VIEW_GROUPS,
            Perm.MANAGE_GROUPS,
            Perm.VIEW_MEMBERS,
            Perm.MANAGE_MEMBERS,
            Perm.CREATE_INVITATIONS,
        }
    ),
    Role.CASHIER: frozenset(
        {
            Perm.VIEW_GROUPS,
            Perm.CREATE_INVITATIONS,
            Perm.VIEW_STOCK,
            Perm.VIEW_ORDERS,
            Perm.VIEW_PROMOTIONS,
            Perm.FULFIL_ORDERS,
        }
    ),
    # A supplier's account sits at the chain's root: what narrows it is this short list, and
    # its link to its own Supplier (stock and demand of its own products only).
    Role.SUPPLIER: frozenset({Perm.VIEW_DEMAND, Perm.DRAFT_PROPOSALS, Perm.VIEW_STOCK}),
}

# Which roles a role may give to new staff (always at or below its own node).
GRANTABLE_ROLES: dict[str, frozenset[str]] = {
    Role.HQ_ADMIN: frozenset(Role.values),
    Role.REGION_MANAGER: frozenset({Role.STORE_MANAGER, Role.GROUP_OPERATOR, Role.CASHIER}),
    Role.STORE_MANAGER: frozenset({Role.GROUP_OPERATOR, Role.CASHIER}),
}


def has_perm(role: str, perm: Perm) -> bool:
    return perm in ROLE_PERMS.get(role, frozenset())
