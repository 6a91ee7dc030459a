"""Ads and abuse in groups (群内突发事件处理, seed 002): every ad a member posts becomes a case,
decided once.

- A group on ``warn_then_remove`` decides by itself: the member's first offence in that group is
  warned, the next one removes them from the group.
- A group on ``manual`` queues the case for the store's staff: warn, remove or dismiss.

Each decision is one conditional status change (``open`` → …), made while the member's stay in
the group is locked, so two sweeps or two clicks never warn twice or remove twice; each is
written to the audit log. Staff messages never become cases (the store's own links are not ads).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, RuleViolation
from shequn.groups.actions import leave_group
from shequn.groups.models import GroupMembership, ModerationPolicy
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .models import CaseStatus, Message, MessageLabel, ModerationCase

WARNING_TEXT = "@{name} 本群禁止发布广告, 再次发布将被移出群聊。"
ACTIONS = ("warn", "remove", "dismiss")


def open_cases(message_ids: Iterable[int]) -> list[ModerationCase]:
    """Cases for the ads among ``message_ids`` sent by members (once per message), then the
    groups' automatic policy applied to each, oldest first."""
    ads = (
        Message.objects.filter(
            pk__in=list(message_ids), label=MessageLabel.AD, sender_member__isnull=False
        )
        .exclude(case__isnull=False)
        .order_by("sent_at", "id")
    )
    made = []
    for message in ads:
        case, created = ModerationCase.objects.get_or_create(
            message=message,
            defaults={
                "group_id": message.group_id,
                "member_id": message.sender_member_id,
                "reason": MessageLabel.AD,
            },
        )
        if created:
            made.append(case)
            if case.group.moderation == ModerationPolicy.WARN_THEN_REMOVE:
                _apply_policy(case)
    return made


def _stay(case: ModerationCase) -> GroupMembership | None:
    """The offender's current stay in the group, locked (None: gone, or not a member)."""
    if case.member_id is None:
        return None
    return (
        GroupMembership.objects.select_for_update(of=("self",))
        .filter(group_id=case.group_id, member_id=case.member_id, left_at__isnull=True)
        .select_related("group__store", "member")
        .first()
    )


def _apply_policy(case: ModerationCase) -> None:
    with transaction.atomic():
        stay = _stay(case)
        if stay is None:
            return  # not in the group any more: a person looks at it
        warned_before = ModerationCase.objects.filter(
            group_id=case.group_id, member_id=stay.member_id, status=CaseStatus.WARNED
        ).exists()
        _decide(case, stay, "remove" if warned_before else "warn", actor=None)


def decide_case(*, acting: Staff, case: ModerationCase, action: str) -> ModerationCase:
    """A person decides a queued case: warn, remove from the group, or dismiss."""
    require_perm(acting, Perm.MANAGE_GROUPS)
    if action not in ACTIONS:
        raise InvalidInput(f"未知的处理方式: {action}", code="invalid_action")
    with transaction.atomic():
        stay = _stay(case)
        if ModerationCase.objects.filter(pk=case.pk).exclude(status=CaseStatus.OPEN).exists():
            raise RuleViolation("该违规记录已处理", code="already_decided")
        if action != "dismiss" and stay is None:
            raise RuleViolation("该成员已不在群中", code="not_a_member")
        _decide(case, stay, action, actor=acting)
    case.refresh_from_db()
    return case


def _decide(
    case: ModerationCase, stay: GroupMembership | None, action: str, *, actor: Staff | None
) -> None:
    status = {
        "warn": CaseStatus.WARNED,
        "remove": CaseStatus.REMOVED,
        "dismiss": CaseStatus.DISMISSED,
    }[action]
    user = actor.user if actor else None
    if not ModerationCase.objects.filter(pk=case.pk, status=CaseStatus.OPEN).update(
        status=status, decided_by=user, decided_at=timeutil.now()
    ):
        raise RuleViolation("该违规记录已处理", code="already_decided")
    details: dict[str, object] = {
        "group": case.group_id,
        "member": case.member_id,
        "message": case.message_id,
        "automatic": actor is None,
    }
    if action == "warn" and stay is not None:
        details["notice"] = WARNING_TEXT.format(name=stay.member.name or "群友")
    if action == "remove" and stay is not None:
        leave_group(membership=stay, reason="发布广告, 警告后再犯, 移出群聊", actor=user)
    record_audit(
        user,
        f"demand.case_{status.value}",
        target=case,
        scope_path=case.group.store.path,
        details=details,
    )
