"""Shop actions: push a product card into groups."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from shequn.catalog.models import Product
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound, RuleViolation
from shequn.groups.models import CustomerGroup, GroupMembership, GroupStatus, MembershipRole
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm, scoped

from .models import GroupPost

MAX_GROUPS_PER_PUSH = 500


def push_product_card(
    *, acting: Staff, product: Product, group_ids: Sequence[int], headline: str = ""
) -> list[GroupPost]:
    """Put a card for ``product`` into each chosen group (all within the caller's scope, or
    nothing). Each card's sharer is the group's member-owner, if it has one."""
    require_perm(acting, Perm.PUSH_CARDS)
    if product.chain_id != acting.node.chain_id:
        raise NotFound("商品不存在")
    if not product.is_active:
        raise RuleViolation(f"「{product.name}」已下架, 不能推送", code="not_on_sale")
    headline = (headline or "").strip()
    if len(headline) > 100:
        raise InvalidInput("推荐语不超过100字", code="invalid_headline")
    wanted = set(group_ids)
    if not wanted or len(wanted) > MAX_GROUPS_PER_PUSH:
        raise InvalidInput(f"请选择 1-{MAX_GROUPS_PER_PUSH} 个社群", code="invalid_groups")
    groups = list(
        scoped(CustomerGroup.objects.filter(pk__in=wanted), acting, Perm.VIEW_GROUPS)
        .filter(status=GroupStatus.ACTIVE)
        .select_related("store")
    )
    missing = wanted - {group.pk for group in groups}
    if missing:
        raise NotFound(f"社群不存在或已关闭: {sorted(missing)}")
    owners = dict(
        GroupMembership.objects.filter(
            group__in=groups, role=MembershipRole.OWNER, left_at__isnull=True
        ).values_list("group_id", "member_id")
    )
    with transaction.atomic():
        posts = [
            GroupPost.objects.create(
                group=group,
                product=product,
                headline=headline,
                sharer_id=owners.get(group.pk),
                posted_by=acting.user,
            )
            for group in groups
        ]
        record_audit(
            acting.user,
            "shop.card_pushed",
            target=product,
            scope_path=acting.node.path,
            details={"groups": sorted(wanted), "headline": headline},
        )
    return posts
