"""A sharer's links and posters: one short code per (sharer, store, product / coupon / group-buy).

The code is the whole scene of the share (≤ 32 characters, what a mini-program QR may carry):
``/m/s/<code>/`` records the sharer as the visitor's last touch and opens the target; the order
placed within the chain's attribution window (7 days unless HQ changes it) stores the sharer
and ``share:<code>``. Codes are random, not sequential, so nobody can walk other sharers' codes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Min
from django.urls import reverse

from shequn.catalog.models import Product, Sku
from shequn.core import timeutil
from shequn.core.errors import InvalidInput, NotFound, PermissionDenied
from shequn.members.models import Member
from shequn.org.models import NodeKind, OrgNode
from shequn.promotions.models import CouponTemplate, GroupBuy

from .models import SHARE_CODE_MAX, ShareCode, Sharer, SharerStatus, ShareTargetKind

CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud and typed by hand
CODE_LENGTH = 10  # 31^10 ≈ 8e14 codes: not guessable, well inside the 32-character scene


@dataclass(frozen=True)
class ShareTarget:
    kind: str
    title: str
    price_fen: int  # the product's price, the group-buy price, or the coupon's discount
    note: str  # one line under the title: "3 人团", "满 39 元可用", the category
    path: str  # the page it opens


def share_code(*, sharer: Member, store: OrgNode, kind: str, target_id: int) -> ShareCode:
    """The sharer's code for this target at this store, made on first use (the same one after)."""
    ((share, _),) = share_codes(sharer=sharer, store=store, targets=[(kind, target_id)])
    return share


def share_codes(
    *, sharer: Member, store: OrgNode, targets: Sequence[tuple[str, int]]
) -> list[tuple[ShareCode, ShareTarget]]:
    """The sharer's code for each (kind, id) at this store, with what it shows: the sharer and
    the store are checked once, each target described once (it exists, in this chain, still on)."""
    if not Sharer.objects.filter(member=sharer, status=SharerStatus.APPROVED).exists():
        raise PermissionDenied("只有审核通过的推客可以分享赚佣金", code="not_a_sharer")
    if store.kind != NodeKind.STORE or store.chain_id != sharer.chain_id:
        raise NotFound("门店不存在")
    described = [
        (kind, target_id, describe_target(kind, target_id, store)) for kind, target_id in targets
    ]
    return [
        (_code_for(sharer, store, kind, target_id), target) for kind, target_id, target in described
    ]


def _code_for(sharer: Member, store: OrgNode, kind: str, target_id: int) -> ShareCode:
    existing = ShareCode.objects.filter(
        sharer=sharer, store=store, kind=kind, target_id=target_id
    ).first()
    if existing is not None:
        return existing
    for _ in range(3):
        try:
            with transaction.atomic():
                return ShareCode.objects.create(
                    code="".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
                    sharer=sharer,
                    store=store,
                    kind=kind,
                    target_id=target_id,
                )
        except IntegrityError:  # made at the same moment, or (once in 1e14) a code collision
            existing = ShareCode.objects.filter(
                sharer=sharer, store=store, kind=kind, target_id=target_id
            ).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not draw a free share code")  # pragma: no cover


def find_share_code(code: str) -> ShareCode | None:
    if not code or len(code) > SHARE_CODE_MAX or any(c not in CODE_ALPHABET for c in code):
        return None
    return ShareCode.objects.filter(code=code).select_related("sharer", "store").first()


def sharer_still_approved(share: ShareCode) -> bool:
    """A suspended sharer's old posters still open the product, but earn nothing."""
    return Sharer.objects.filter(member_id=share.sharer_id, status=SharerStatus.APPROVED).exists()


def describe_target(kind: str, target_id: int, store: OrgNode) -> ShareTarget:
    """What a link or poster shows, from the live catalog and promotions (NotFound if gone)."""
    now = timeutil.now()
    if kind == ShareTargetKind.PRODUCT:
        product = Product.objects.filter(
            pk=target_id, chain_id=store.chain_id, is_active=True
        ).first()
        if product is None:
            raise NotFound("商品不存在或已下架")
        price = Sku.objects.filter(product=product, is_active=True).aggregate(low=Min("price_fen"))
        return ShareTarget(
            kind,
            product.name,
            int(price["low"] or 0),
            product.category.name if product.category is not None else "",
            reverse("shop:product", args=[product.pk]),
        )
    if kind == ShareTargetKind.COUPON:
        template = CouponTemplate.objects.filter(
            pk=target_id, chain_id=store.chain_id, cancelled_at__isnull=True, ends_at__gt=now
        ).first()
        if template is None:
            raise NotFound("优惠券不存在或已结束")
        spend = template.min_spend_fen
        return ShareTarget(
            kind,
            template.name,
            template.discount_fen,
            f"满 {spend / 100:g} 元可用" if spend else "无门槛",
            reverse("shop:coupons"),
        )
    if kind == ShareTargetKind.GROUP_BUY:
        campaign = (
            GroupBuy.objects.filter(
                pk=target_id, chain_id=store.chain_id, cancelled_at__isnull=True, ends_at__gt=now
            )
            .select_related("sku__product")
            .first()
        )
        if campaign is None:
            raise NotFound("拼团不存在或已结束")
        return ShareTarget(
            kind,
            campaign.name,
            campaign.price_fen,
            f"{campaign.team_size} 人团 · 单买 ¥{campaign.sku.price_fen / 100:.2f}",
            reverse("shop:group_buy", args=[campaign.pk]),
        )
    raise InvalidInput(f"未知的分享类型: {kind}", code="invalid_share_kind")
