"""WeCom customer-group change callbacks (``change_external_chat``) applied to our groups.

The event names the group (``ChatId``, our ``CustomerGroup.external_chat_id``) and, for member
changes, who (``MemChangeList``: external userids, matched to members by their
``wecom_external_userid`` identity). WeCom says these callbacks may come twice, out of order or
not at all, so each is kept once under its key and applied only where it still makes sense:

- ``update/add_member``: known customers not in the group join it (channel 企业微信群);
- ``update/del_member``: known customers in the group leave it (by themselves, or removed);
- ``dismiss``: the group is closed (kept, never deleted);
- ``create`` of a chat we do not know, and people we do not know, are written down for staff.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - only decrypted, signed callbacks, DOCTYPE refused
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, RuleViolation
from shequn.members.models import Member
from shequn.members.queries import members_by_wecom_id
from shequn.org.models import OrgNode

from .actions import join_group, leave_group
from .models import (
    CustomerGroup,
    GroupChangeEvent,
    GroupMembership,
    GroupStatus,
    JoinChannel,
)

QUIT_REASONS = {"0": "自行退出企业微信群", "1": "被群主或管理员移出企业微信群"}


class BadEvent(ValueError):
    pass


@dataclass(frozen=True)
class GroupChange:
    corp: str
    created: str
    chat_id: str
    change_type: str
    update_detail: str
    quit_scene: str
    member_version: str
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        parts = (self.corp, self.created, self.chat_id, self.change_type, self.update_detail)
        return ":".join((*parts, self.member_version))[:200]


def parse_change(xml: str) -> GroupChange | None:
    """The change in a decrypted callback, or None when it is another event."""
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise BadEvent("DOCTYPE is not allowed")
    try:
        root = ET.fromstring(xml)  # noqa: S314 - see the import
    except ET.ParseError as exc:
        raise BadEvent(f"not XML: {exc}") from None

    def text(tag: str) -> str:
        return (root.findtext(tag) or "").strip()

    if text("Event") != "change_external_chat":
        return None
    if not text("ChatId") or not text("ChangeType"):
        raise BadEvent("ChatId and ChangeType are required")
    members = tuple(
        (item.text or "").strip() for item in root.iterfind("MemChangeList/Item") if item.text
    )
    return GroupChange(
        corp=text("ToUserName"),
        created=text("CreateTime"),
        chat_id=text("ChatId")[:64],
        change_type=text("ChangeType")[:20],
        update_detail=text("UpdateDetail")[:20],
        quit_scene=text("QuitScene"),
        member_version=text("CurMemVer"),
        members=members,
    )


def apply_group_change(chain: OrgNode, change: GroupChange, payload: str) -> GroupChangeEvent:
    """Apply a change once (a repeat returns the first one's record, changing nothing)."""
    existing = GroupChangeEvent.objects.filter(key=change.key).first()
    if existing is not None:
        return existing
    group = CustomerGroup.objects.filter(
        store__path__startswith=chain.path, external_chat_id=change.chat_id
    ).first()
    try:
        with transaction.atomic():
            event = GroupChangeEvent.objects.create(
                key=change.key,
                chat_id=change.chat_id,
                change_type=change.change_type,
                update_detail=change.update_detail,
                group=group,
                payload=payload[:20_000],
            )
            outcome = _apply(chain, group, change) if group else "未关联到本连锁的社群, 待员工关联"
            GroupChangeEvent.objects.filter(pk=event.pk).update(outcome=outcome[:200])
    except IntegrityError:  # the same event at the same moment: that one stands
        return GroupChangeEvent.objects.get(key=change.key)
    event.refresh_from_db()
    return event


def _apply(chain: OrgNode, group: CustomerGroup, change: GroupChange) -> str:
    if change.change_type == "dismiss":
        CustomerGroup.objects.filter(pk=group.pk).update(status=GroupStatus.CLOSED)
        record_audit(
            None,
            "groups.closed_by_wecom",
            target=group,
            scope_path=group.store.path,
            details={"chat_id": change.chat_id},
        )
        return "群已解散, 社群已关闭"
    if change.update_detail not in ("add_member", "del_member"):
        return f"已记录 {change.change_type}/{change.update_detail or '-'}"
    known = members_by_wecom_id(chain.pk, change.members)
    done = 0
    for userid in change.members:
        member_id = known.get(userid)
        if member_id is None:
            continue
        stay = (
            GroupMembership.objects.filter(group=group, member_id=member_id, left_at__isnull=True)
            .select_related("group__store")
            .first()
        )
        try:
            if change.update_detail == "add_member" and stay is None:
                join_group(
                    group=group, member=Member.objects.get(pk=member_id), channel=JoinChannel.WECOM
                )
                done += 1
            elif change.update_detail == "del_member" and stay is not None:
                leave_group(
                    membership=stay,
                    reason=QUIT_REASONS.get(change.quit_scene, "离开企业微信群"),
                )
                done += 1
        except (Conflict, RuleViolation):
            continue  # already done by another path, or the group is full or closed
    unknown = len(change.members) - len(known)
    verb = "入群" if change.update_detail == "add_member" else "退群"
    return f"{verb} {done} 人" + (f", {unknown} 人不是本连锁已知会员" if unknown else "")
