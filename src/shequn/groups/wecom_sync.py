"""WeCom customer-group change callbacks (``change_external_chat``) applied to our groups.

The event names the group (``ChatId``, our ``CustomerGroup.external_chat_id``) and, for member
changes, who (``MemChangeList``: external userids, matched to members by their
``wecom_external_userid`` identity). WeCom says these callbacks may come twice, out of order or
not at all, so each is kept once under its key and applied only where it still makes sense:

- ``update/add_member``: known customers not in the group join it (channel 企业微信群);
- ``update/del_member``: known customers in the group leave it (by themselves, or removed);
- ``dismiss``: the group is closed (kept, never deleted);
- ``create`` of a chat we do not know, and people we do not know, are written down for staff.

WeCom's staff say plainly that these callbacks "may be out of order, may be lost", so member
changes are applied one after another only while they chain: each names the group's member
version before (``LastMemVer``) and after (``CurMemVer``) it, and we keep the one we last
applied. A callback that does not follow on marks the group for a full resync instead: the
sweep (``sweep_wecom_resyncs``, off the callback's request) reads the member list back with
``groupchat/get`` and makes our stays match it — joins for known customers missing here, leaves
for members with a WeCom identity who are no longer there. A failed read leaves the mark, and
the sweep tries again five minutes later.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET  # noqa: S405 - only decrypted, signed callbacks, DOCTYPE refused
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, RuleViolation
from shequn.integrations.wecom.client import WeComClient, WeComError, client_from_settings
from shequn.members.models import ChannelIdentity, IdentityChannel, Member
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
RESYNC_LEFT = "企业微信群同步: 已不在群内"
RESYNC_RETRY = timedelta(minutes=5)

logger = logging.getLogger("shequn.wecom")


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
    member_version: str  # CurMemVer: the group's member version after this change
    last_member_version: str  # LastMemVer: before it
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
        member_version=text("CurMemVer")[:64],
        last_member_version=text("LastMemVer")[:64],
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
    note = ""
    if change.member_version:  # the callback says where it fits: apply it only if it follows on
        locked = CustomerGroup.objects.select_for_update().get(pk=group.pk)
        held = locked.wecom_member_version
        if held == change.member_version:
            return "成员版本已是最新, 无需处理"
        can_resync = client_from_settings() is not None
        broken = bool(held) and held != change.last_member_version  # a callback lost or late
        if broken and can_resync:
            mark_for_resync(locked.pk)
            return (
                f"成员版本不连续 (本地 {held}, 事件前 {change.last_member_version or '无'}):"
                " 已安排全量同步"
            )
        if not held and can_resync:  # our starting point is unknown: apply, then check
            mark_for_resync(locked.pk)
            note = ", 已安排全量同步核对"
        elif broken:  # no way to read WeCom: best effort
            note = ", 成员版本不连续但未配置客户联系 secret, 按事件处理"
        locked.wecom_member_version = change.member_version
        locked.save(update_fields=["wecom_member_version"])
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
    return f"{verb} {done} 人" + (f", {unknown} 人不是本连锁已知会员" if unknown else "") + note


def mark_for_resync(group_id: int) -> None:
    """Due now; a later mark moves the time on, so a resync that read WeCom before this mark
    does not clear it (``resync_group_members``)."""
    CustomerGroup.objects.filter(pk=group_id).update(wecom_resync_due_at=timeutil.now())


def resync_group_members(group_id: int, client: WeComClient) -> str:
    """Make the group's stays match WeCom's member list (``groupchat/get``); what was done.

    Only members WeCom can speak for are judged: a customer in the list who is a known member
    and not in the group joins it; a member of the group who has a WeCom identity and is not in
    the list leaves it. Members without a WeCom identity (joined by QR code in the mini
    program, say) are left alone. ``WeComError``: nothing changed. A callback that chained on
    while WeCom was being read is not undone: the group is marked to be read again."""
    group = CustomerGroup.objects.select_related("store").get(pk=group_id)
    due_at, held = group.wecom_resync_due_at, group.wecom_member_version
    if not group.external_chat_id:
        _postpone(group_id, due_at, None)
        return "未关联企业微信群"
    chat = client.group_chat(group.external_chat_id)  # the network: before any lock
    chain_id = group.store.chain_id
    with transaction.atomic():
        group = CustomerGroup.objects.select_for_update().select_related("store").get(pk=group_id)
        if group.wecom_member_version != held:  # a callback applied meanwhile: read again
            mark_for_resync(group_id)
            return "同步期间有新的成员变更, 稍后重新同步"
        listed = set(members_by_wecom_id(chain_id, chat.customers).values())
        staying = dict(
            GroupMembership.objects.filter(group=group, left_at__isnull=True).values_list(
                "member_id", "pk"
            )
        )
        with_wecom = set(
            ChannelIdentity.objects.filter(
                chain_id=chain_id,
                channel=IdentityChannel.WECOM_EXTERNAL_USERID,
                member_id__in=list(staying),
            ).values_list("member_id", flat=True)
        )
        left = 0
        for stay in GroupMembership.objects.filter(
            pk__in=[staying[m] for m in with_wecom - listed]
        ).select_related("group__store"):
            try:
                leave_group(membership=stay, reason=RESYNC_LEFT)
                left += 1
            except Conflict:
                continue  # left by another path meanwhile
        joined = refused = 0
        for member in Member.objects.filter(pk__in=listed - set(staying)).order_by("pk"):
            try:
                join_group(group=group, member=member, channel=JoinChannel.WECOM)
                joined += 1
            except (Conflict, RuleViolation):
                refused += 1  # the group is closed or full here
        group.wecom_member_version = chat.member_version[:64]
        group.save(update_fields=["wecom_member_version"])
        _postpone(group_id, due_at, None)  # done, unless marked again since it was read
        unknown = len(chat.customers) - len(listed)
        outcome = (
            f"全量同步: 入群 {joined} 人, 退群 {left} 人"
            + (f", {unknown} 人不是本连锁已知会员" if unknown else "")
            + (f", {refused} 人未能入群(群已关闭或已满)" if refused else "")
        )
        record_audit(
            None,
            "groups.wecom_resynced",
            target=group,
            scope_path=group.store.path,
            details={
                "chat_id": group.external_chat_id,
                "member_version": chat.member_version,
                "joined": joined,
                "left": left,
                "unknown": unknown,
                "refused": refused,
            },
        )
    return outcome


def sweep_wecom_resyncs(
    *, pause_s: float = 0.0, batch: int = 500, client: WeComClient | None = None
) -> int:
    """Resync the groups marked due (oldest mark first); how many were resynced. Without a
    configured client nothing is read and the marks stay. A group that fails is tried again in
    five minutes: after an error of ours the others go on; after WeCom's (unreachable, our
    credentials refused, the rate limit…), which would most likely hit every group alike, they
    wait for the next run — one timeout per run, not one per group. A chat WeCom does not know
    has its mark cleared."""
    client = client or client_from_settings()
    if client is None:
        return 0
    now = timeutil.now()
    due: list[tuple[int, datetime | None]] = list(
        CustomerGroup.objects.filter(wecom_resync_due_at__lte=now)
        .order_by("wecom_resync_due_at", "pk")
        .values_list("pk", "wecom_resync_due_at")[:batch]
    )
    done = 0
    for group_id, due_at in due:
        try:
            resync_group_members(group_id, client)
            done += 1
        except WeComError as failed:
            if failed.code in CHAT_GONE:  # nothing to read, now or in five minutes
                logger.warning("wecom resync of group %s: %s; mark cleared", group_id, failed)
                _postpone(group_id, due_at, None)
                continue
            logger.warning("wecom resync of group %s failed: %s", group_id, failed)
            _postpone(group_id, due_at, timeutil.now() + RESYNC_RETRY)
            break  # unreachable, credentials refused, rate limit…: the rest wait for the next run
        except Exception:  # noqa: BLE001 - one group's failure must not hold up the rest
            logger.exception("wecom resync of group %s failed", group_id)
            _postpone(group_id, due_at, timeutil.now() + RESYNC_RETRY)
        if pause_s:
            time.sleep(pause_s)
    return done


CHAT_GONE = {40050}  # chatid not found (a dismissed or foreign group)


def _postpone(group_id: int, due_at: datetime | None, until: datetime | None) -> None:
    """Move the group's mark from ``due_at`` to ``until`` (None: clear it); a mark set since
    ``due_at`` was read is newer news and stays."""
    CustomerGroup.objects.filter(pk=group_id, wecom_resync_due_at=due_at).update(
        wecom_resync_due_at=until
    )
