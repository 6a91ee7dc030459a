"""Member actions: register (find-or-create by phone), edit, consents, channel identities."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from shequn.core import timeutil
from shequn.core.audit import collecting_disclosures, record_audit
from shequn.core.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
    Throttled,
)
from shequn.core.phones import normalize_phone
from shequn.core.throttle import Limit, take, too_soon
from shequn.integrations.sms import send_sms
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import ChannelIdentity, IdentityChannel, LoginCode, Member
from .queries import PHONES_VIEWED, can_see_pii

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


def ticked_consents(**ticked: bool) -> dict[str, bool] | None:
    """The purposes a joining member ticked, as grants. An unticked box is no answer (it does
    not withdraw an earlier grant); withdrawing is ``set_consent``'s job."""
    return {purpose: True for purpose, yes in ticked.items() if yes} or None


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


# --- proving a phone by SMS code -----------------------------------------------------------
# Nothing hands out a member's token, session or recruitment reward on a phone number alone:
# printed QR codes are public, so "I am +86138…" must be proven by the code texted to it.
LOGIN_CODE_TTL = timedelta(minutes=5)
LOGIN_CODE_ATTEMPTS = 5


@dataclass(frozen=True)
class PhoneProof:
    """A phone shown to belong to the person asking, within one chain.

    Made by ``prove_phone`` (the code texted to it came back), or ``vouched`` by a caller that
    is the authority itself: staff adding a customer they know, an import, the demo, tests.
    Never built from what a request merely claims (a phone, an openid in a body).
    """

    chain_id: int
    phone: str  # E.164
    how: str  # "sms_code" or "vouched"

    @classmethod
    def vouched(cls, chain_id: int, phone: str) -> PhoneProof:
        return cls(chain_id=chain_id, phone=normalize_phone(phone), how="vouched")


def _code_hash(chain_id: int, phone: str, code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{chain_id}:{phone}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def _sms_limits() -> tuple[Limit, Limit, Limit]:
    day = timedelta(days=1)
    phone = Limit(
        per_window=settings.SHEQUN_SMS_PHONE_DAILY,
        window=day,
        interval=timedelta(seconds=settings.SHEQUN_SMS_PHONE_INTERVAL_S),
    )
    return (
        phone,
        Limit(settings.SHEQUN_SMS_IP_DAILY, day),
        Limit(settings.SHEQUN_SMS_GLOBAL_DAILY, day),
    )


def send_login_code(*, store: OrgNode, phone: str, ip: str | None = None) -> None:
    """Text a 6-digit code to ``phone``. Refused when asked again within the interval (60 s),
    past the phone's daily count (10), the client address's (30) or the deployment's (20,000):
    each a guarded counter taken in this transaction, so parallel requests cannot overshoot and
    a refusal by a later limit gives the earlier ones back. The answer is the same whether or
    not the phone belongs to a member."""
    e164 = normalize_phone(phone)
    per_phone, per_ip, overall = _sms_limits()
    phone_key = f"sms:phone:{store.chain_id}:{e164}"
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        if not take(phone_key, per_phone):
            if too_soon(phone_key, per_phone):
                interval = settings.SHEQUN_SMS_PHONE_INTERVAL_S
                raise Throttled(f"验证码已发送, 请 {interval} 秒后再试", code="code_too_soon")
            raise Throttled("今天获取验证码次数过多, 请明天再试", code="code_limit")
        if ip and not take(f"sms:ip:{ip}", per_ip):
            raise Throttled("该网络今天获取验证码次数过多, 请明天再试", code="code_limit_ip")
        if not take("sms:all", overall):
            raise Throttled("短信发送繁忙, 请稍后再试", code="code_limit_global")
        now = timeutil.now()
        LoginCode.objects.create(
            chain_id=store.chain_id,
            phone=e164,
            code_hash=_code_hash(store.chain_id, e164, code),
            created_at=now,
            expires_at=now + LOGIN_CODE_TTL,
        )
        # Inside the transaction: a provider that refuses the text leaves no code and no count.
        send_sms(e164, f"【{store.name}】验证码 {code}, 5 分钟内有效。如非本人操作请忽略。")


def prove_phone(*, store: OrgNode, phone: str, code: str) -> PhoneProof:
    """The proof that ``phone`` is the asker's, once the code texted to it matches. Each guess
    uses up an attempt by a conditional UPDATE, so parallel guesses get no more; a matching
    code is used once."""
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
    return PhoneProof(chain_id=store.chain_id, phone=e164, how="sms_code")


def log_in_with_code(*, store: OrgNode, phone: str, code: str) -> MemberResult:
    """The member behind ``phone`` once the code matches (registered at ``store`` if new)."""
    proof = prove_phone(store=store, phone=phone, code=code)
    return find_or_register_member(store=store, phone=proof.phone)


def record_export(
    *, acting: Staff, action: str, build: Callable[[], bytes], rows: int, **details: object
) -> bytes:
    """Build an export of personal data (an Excel workbook) and record it as one audit event:
    who, their scope, what was asked (``details``), how many rows and whose phones went out
    unmasked — in place of the per-page disclosure event (PIPL: who saw what is logged)."""
    with collecting_disclosures() as disclosures:
        data = build()
    record_audit(
        acting.user,
        action,
        scope_path=acting.node.path,
        details={
            "format": "xlsx",
            **details,
            "rows": rows,
            "phones": "unmasked" if can_see_pii(acting) else "masked",
            "unmasked_members": disclosures.ids(PHONES_VIEWED),
        },
    )
    return data
