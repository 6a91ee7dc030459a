"""`shequn wecom resync`: a group's members read back from WeCom and synced."""

from __future__ import annotations

import argparse

from ._common import _fail, _progress_printer


def cmd_wecom_resync(args: argparse.Namespace) -> int:
    from shequn.groups.models import CustomerGroup, GroupStatus
    from shequn.groups.wecom_sync import resync_group_members
    from shequn.integrations.wecom.client import WeComError, client_from_settings
    from shequn.org.models import NodeKind, OrgNode

    client = client_from_settings()
    if client is None:
        return _fail("未配置企业微信客户联系: 请设置 WECOM_CORP_ID 和 WECOM_CONTACT_SECRET")
    chain = OrgNode.objects.filter(code=args.chain, kind=NodeKind.HQ).first()
    if chain is None:
        return _fail(f"没有代码为 {args.chain} 的连锁")
    groups = CustomerGroup.objects.filter(
        store__path__startswith=chain.path, external_chat_id__isnull=False
    ).exclude(external_chat_id="")
    if args.group:
        groups = groups.filter(pk__in=args.group)
        missing = set(args.group) - set(groups.values_list("pk", flat=True))
        if missing:
            listed = ", ".join(map(str, sorted(missing)))
            return _fail(f"本连锁没有这些已关联企业微信的社群: {listed}")
    else:
        groups = groups.filter(status=GroupStatus.ACTIVE)
    ids = list(groups.order_by("pk").values_list("pk", flat=True))
    failed = 0
    progress, update = _progress_printer()
    with progress:
        update("同步企业微信群成员", 0, len(ids))
        for done, group_id in enumerate(ids, start=1):
            try:
                outcome = resync_group_members(group_id, client)
                progress.console.print(f"社群 {group_id}: {outcome}")
            except Exception as error:  # noqa: BLE001 - report the group, go on to the next
                failed += 1
                reason = (
                    error if isinstance(error, WeComError) else f"{type(error).__name__}: {error}"
                )
                progress.console.print(f"社群 {group_id}: {reason}")
            update("同步企业微信群成员", done, len(ids))
    print(f"同步社群 {len(ids) - failed} 个, 失败 {failed} 个")
    return 3 if failed else 0
