"""Member actions: register (find-or-create by phone), edit, consents, channel identities."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from shequn.integrations.sms import send_sms
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import ChannelIdentity, IdentityChannel, LoginCode, Member
from .phones import normalize_phone

CONSENT_PURPOSES = ("marketing", "chat_analysis", "personalization")


@dataclass(frozen=True)
class MemberResult:
    member: Member
    created: bool


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > 50:
        raise InvalidInput("姓名不超过50字")
    return name


def find_or_register_member(
    *,
    store: OrgNode,
    phone: str,
    name: str = "",
    consents: dict[str, bool] | None = None,
    identities: dict[str, str] | None = None,
    actor: User | None = None,
) -> MemberResult:
    """The member with this phone in the store's chain, registering them at ``store`` if new.

    Safe under concurrency: the (chain, phone) unique constraint decides who creates.
    An existing member keeps their home store and name; new identities are attached.
    """
    if store.kind != NodeKind.STORE:
        raise InvalidInput("会员只能归属门店")
    e164 = normalize_phone(phone)
    name = _clean_name(name)
    chain_id = store.chain_id
    with transaction.atomic():
        created = False
        member = Member.objects.filter(chain_id=chain_id, phone=e164).first()
        if member is None:
            try:
                with transaction.atomic():
                    member = Member.objects.create(
                        chain_id=chain_id, phone=e164, name=name, home_store=store
                    )
                    created = True
            except IntegrityError:
                member = Member.objects.get(chain_id=chain_id, phone=e164)
        if created:
            record_audit(actor, "members.registered", target=member, scope_path=store.path)
        for purpose, granted in (consents or {}).items():
            _apply_consent(member, purpose, granted, actor=actor)
        for channel, value in (identities or {}).items():
            _attach_identity(member, channel, value, actor=actor)
    return MemberResult(member=member, created=created)


def set_consent(
    *, member: Member, purpose: str, granted: bool, actor: User | None = None
) -> Member:
    """Grant or withdraw one consent purpose; withdrawal is as easy as granting (PIPL art. 15)."""
    with transaction.atomic():
        _apply_consent(member, purpose, granted, actor=actor)
    return member


def _apply_consent(member: Member, purpose: str, granted: bool, *, actor: User | None) -> None:
    if purpose not in CONSENT_PURPOSES:
        raise InvalidInput(f"未知的授权用途: {purpose}", code="invalid_consent_purpose")
    field = f"consent_{purpose}"
    if getattr(member, field) == granted and getattr(member, f"{field}_at") is not None:
        return
    setattr(member, field, granted)
    setattr(member, f"{field}_at", timeutil.now())
    member.save(update_fields=[field, f"{field}_at"])
    record_audit(
        actor,
        "members.consent_granted" if granted else "members.consent_withdrawn",
        target=member,
        scope_path=member.home_store.path,
        details={"purpose": purpose},
    )


def _attach_identity(member: Member, channel: str, value: str, *, actor: User | None) -> None:
    if channel not in IdentityChannel.values:
        raise InvalidInput(f"未知的渠道身份类型: {channel}", code="invalid_identity_channel")
    value = (value or "").strip()
    if not value or len(value) > 128:
        raise InvalidInput("渠道身份不能为空且不超过128字符", code="invalid_identity")
    existing = ChannelIdentity.objects.filter(
        chain_id=member.chain_id, channel=channel, value=value
    ).first()
    if existing is not None:
        if existing.member_id != member.pk:
            raise Conflict("该渠道身份已绑定其他会员", code="identity_taken")
        return
    try:
        with transaction.atomic():
            identity = ChannelIdentity.objects.create(
                chain_id=member.chain_id, member=member, channel=channel, value=value
            )
    except IntegrityError:
        raise Conflict("该渠道身份已绑定其他会员", code="identity_taken") from None
    record_audit(
        actor,
        "members.identity_attached",
        target=identity,
        scope_path=member.home_store.path,
        details={"channel": channel},
    )


def attach_identity(*, acting: Staff, member: Member, channel: str, value: str) -> Member:
    require_perm(acting, Perm.MANAGE_MEMBERS)
    with transaction.atomic():
        _attach_identity(member, channel, value, actor=acting.user)
    return member


def update_member(
    *, acting: Staff, member: Member, name: str | None = None, home_store: OrgNode | None = None
) -> Member:
    require_perm(acting, Perm.MANAGE_MEMBERS)
    changes: dict[str, object] = {}
    if name is not None:
        member.name = _clean_name(name)
        changes["name"] = member.name
    if home_store is not None:
        if home_store.kind != NodeKind.STORE or not home_store.is_within(acting.node):
            raise PermissionDenied("只能转入本部门及下级门店")
        if home_store.chain_id != member.chain_id:
            raise InvalidInput("不能转到其他连锁")
        member.home_store = home_store
        changes["home_store"] = home_store.pk
    if not changes:
        return member
    with transaction.atomic():
        member.save(update_fields=[k for k in ("name", "home_store") if k in changes])
        record_audit(
            acting.user,
            "members.updated",
            target=member,
            scope_path=member.home_store.path,
            details={"changed": sorted(changes)},
        )
    return member


# --- member login (H5) by SMS code ----------------------------------------------------------
LOGIN_CODE_TTL = timedelta(minutes=5)
LOGIN_CODE_INTERVAL = timedelta(seconds=60)  # one code a minute per phone
LOGIN_CODES_PER_DAY = 10
LOGIN_CODE_ATTEMPTS = 5


def _code_hash(chain_id: int, phone: str, code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{chain_id}:{phone}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def send_login_code(*, store: OrgNode, phone: str) -> None:
    """Text a 6-digit login code to ``phone``; refused when asked again within a minute or
    more than ten times a day (an SMS costs money and annoys the owner of a typed-in number)."""
    e164 = normalize_phone(phone)
    now = timeutil.now()
    recent = LoginCode.objects.filter(
        chain_id=store.chain_id, phone=e164, created_at__gt=now - timedelta(days=1)
    )
    if recent.filter(created_at__gt=now - LOGIN_CODE_INTERVAL).exists():
        raise RuleViolation("验证码已发送, 请 60 秒后再试", code="code_too_soon")
    if recent.count() >= LOGIN_CODES_PER_DAY:
        raise RuleViolation("今天获取验证码次数过多, 请明天再试", code="code_limit")
    code = f"{secrets.randbelow(10**6):06d}"
    LoginCode.objects.create(
        chain_id=store.chain_id,
        phone=e164,
        code_hash=_code_hash(store.chain_id, e164, code),
        created_at=now,
        expires_at=now + LOGIN_CODE_TTL,
    )
    send_sms(e164, f"【{store.name}】验证码 {code}, 5 分钟内有效。如非本人操作请忽略。")


def log_in_with_code(*, store: OrgNode, phone: str, code: str) -> MemberResult:
    """The member behind ``phone`` once the code matches (registered at ``store`` if new).
    Each guess uses up an attempt by a conditional UPDATE, so parallel guesses get no more."""
    e164 = normalize_phone(phone)
    code = (code or "").strip()
    now = timeutil.now()
    latest = (
        LoginCode.objects.filter(
            chain_id=store.chain_id, phone=e164, used_at__isnull=True, expires_at__gt=now
        )
        .order_by("-created_at")
        .first()
    )
    if latest is None:
        raise RuleViolation("验证码已失效, 请重新获取", code="code_expired")
    counted = LoginCode.objects.filter(pk=latest.pk, attempts__lt=LOGIN_CODE_ATTEMPTS).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        raise RuleViolation("错误次数过多, 请重新获取验证码", code="code_expired")
    if not hmac.compare_digest(latest.code_hash, _code_hash(store.chain_id, e164, code)):
        raise InvalidInput("验证码不正确", code="wrong_code")
    if not LoginCode.objects.filter(pk=latest.pk, used_at__isnull=True).update(used_at=now):
        raise RuleViolation("验证码已使用, 请重新获取", code="code_expired")
    return find_or_register_member(store=store, phone=e164)
