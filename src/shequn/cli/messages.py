"""`shequn messages import`: group messages from a WeCom chat archive, JSON lines or CSV."""

from __future__ import annotations

import argparse
import sys

from ._common import _fail, _progress_printer


def cmd_messages_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shequn.demand.ingest import import_messages as run_import
    from shequn.demand.ingest import open_records
    from shequn.org.models import NodeKind, OrgNode

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"找不到文件: {path}")
    if args.batch < 1:
        return _fail("--batch 须为正整数")
    chain = OrgNode.objects.filter(code=args.chain, kind=NodeKind.HQ).first()
    if chain is None:
        return _fail(f"没有代码为 {args.chain} 的连锁")
    size = path.stat().st_size
    progress, update = _progress_printer()
    with progress, path.open("rb") as raw:
        report = run_import(
            chain,
            open_records(path.name, raw),
            batch=args.batch,
            progress=lambda _: update("导入消息(字节)", min(raw.tell(), size), size),
        )
    for bad in report.bad[:50]:
        print(f"第 {bad.line} 行: {bad.reason}", file=sys.stderr)
    if report.bad_count > 50:
        print(f"…… 另有 {report.bad_count - 50} 条无法读取的记录", file=sys.stderr)
    print(
        f"读取 {report.read} 条, 新增 {report.imported} 条, 重复 {report.duplicates} 条,"
        f" 单聊跳过 {report.not_group} 条, 无法读取 {report.bad_count} 条"
    )
    return 3 if report.bad else 0
