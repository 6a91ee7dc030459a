"""The sharers' money: `shequn settle` (a settlement batch: withdraw and pay out) and
`shequn book-commissions` (book the commissions still missing on paid, attributed orders)."""

from __future__ import annotations

import argparse

from ._common import _fail, _progress_printer


def cmd_settle(args: argparse.Namespace) -> int:

    from shequn.org.models import NodeKind, OrgNode
    from shequn.referrals.actions import run_settlement
    from shequn.referrals.models import SettlementBatch
    from shequn.referrals.policy import chain_policy

    if args.pause_ms < 0:
        return _fail("--pause-ms 不能为负")
    label = (args.label or "").strip()
    if not label or len(label) > 32:
        return _fail("批次名称为 1-32 个字符, 如 2026-11")
    chain = OrgNode.objects.filter(code=args.chain, kind=NodeKind.HQ).first()
    if chain is None:
        return _fail(f"没有代码为 {args.chain} 的连锁")
    batch, _ = SettlementBatch.objects.get_or_create(chain=chain, label=label)
    done = run_settlement(
        batch, min_fen=chain_policy(chain.pk).min_withdrawal_fen, pause_s=args.pause_ms / 1000
    )
    print(
        f"结算批次 {label}: 提现 {done['withdrawn']} 人, 到账 {done['paid']} 笔, 失败退回 {done['failed']} 笔"
    )
    return 0


def cmd_book_commissions(args: argparse.Namespace) -> int:
    from shequn.org.models import NodeKind, OrgNode
    from shequn.referrals.bulk import book_commissions

    if args.chunk < 1:
        return _fail("--chunk 须为正整数")
    chain = OrgNode.objects.filter(code=args.chain, kind=NodeKind.HQ).first()
    if chain is None:
        return _fail(f"没有代码为 {args.chain} 的连锁")
    progress, update = _progress_printer()
    with progress:
        done = book_commissions(
            chain_id=chain.pk,
            chunk=args.chunk,
            progress=lambda seen, total: update("佣金入账(订单)", seen, total),
        )
    print(
        f"检查订单 {done.orders_seen} 笔, 新入账佣金 {done.commissions} 笔"
        f" 共 {done.booked_fen / 100:.2f} 元, 其中待审核 {done.held} 笔"
    )
    return 0
