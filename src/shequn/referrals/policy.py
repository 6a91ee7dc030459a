"""A chain's referral policy (分销设置), set by HQ: how customers stay bound to the sharer who
brought them (CRMEB's binding modes), how long a click counts (attribution window), how long a
commission stays frozen after handover, the minimum withdrawal, and the group owners' reward.

``chain_policy`` is read on hot paths (every order asks for the binding mode and the window),
so it is remembered for 2 s per process; ``set_referral_settings`` forgets it at once here,
other processes within 2 s.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import BindingMode, ReferralSettings

# field: (lowest, highest, message) — what HQ may set, and the one place the limits live
LIMITS: dict[str, tuple[int, int, str]] = {
    "binding_days": (1, 365, "绑定天数须在 1-365 之间"),
    "attribution_days": (1, 30, "归因窗口须在 1-30 天之间"),
    "freeze_days": (0, 30, "冻结期须在 0-30 天之间"),
    "min_withdrawal_fen": (100, 100_000, "最低提现额须在 1-1000 元之间"),
    "group_owner_bp": (0, 3000, "群主奖励比例须在 0-30% 之间"),
}
TTL_S = 2.0
_cache: dict[int, tuple[float, ReferralSettings]] = {}


def defaults(chain_id: int) -> ReferralSettings:
    """The policy of a chain HQ never configured (not saved)."""
    return ReferralSettings(
        chain_id=chain_id, min_withdrawal_fen=settings.SHEQUN_MIN_WITHDRAWAL_FEN
    )


def chain_policy(chain_id: int) -> ReferralSettings:
    hit = _cache.get(chain_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    row = ReferralSettings.objects.filter(chain_id=chain_id).first() or defaults(chain_id)
    _cache[chain_id] = (time.monotonic() + TTL_S, row)
    return row


def forget_policies() -> None:
    _cache.clear()


def attribution_window(chain_id: int) -> timedelta:
    return timedelta(days=chain_policy(chain_id).attribution_days)


def freeze_period(chain_id: int) -> timedelta:
    return timedelta(days=chain_policy(chain_id).freeze_days)


def set_referral_settings(*, acting: Staff, **changes: Any) -> ReferralSettings:
    """HQ changes any of the policy's fields (the others keep their values)."""
    require_perm(acting, Perm.MANAGE_COMMISSIONS)
    unknown = set(changes) - {"binding_mode", *LIMITS}
    if unknown:
        raise InvalidInput(f"未知的设置: {', '.join(sorted(unknown))}", code="invalid_setting")
    if "binding_mode" in changes and changes["binding_mode"] not in BindingMode.values:
        raise InvalidInput(
            f"未知的绑定方式: {changes['binding_mode']}", code="invalid_binding_mode"
        )
    for name, value in changes.items():
        if name in LIMITS:
            low, high, message = LIMITS[name]
            if type(value) is not int or not low <= value <= high:
                raise InvalidInput(message, code="invalid_setting", details={"field": name})
    chain_id = acting.node.chain_id
    with transaction.atomic():
        row = ReferralSettings.objects.select_for_update().filter(chain_id=chain_id).first()
        if row is None:
            row = defaults(chain_id)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
        forget_policies()
        record_audit(
            acting.user,
            "referrals.settings_changed",
            target=row,
            scope_path=acting.node.path,
            details=changes,
        )
    return row
