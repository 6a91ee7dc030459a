"""`shequn`: the one command-line entry point.

    shequn demo            set up var/, load the demo chain, serve it
    shequn serve           serve the platform (waitress; gunicorn with --workers N)
    shequn migrate         apply database migrations
    shequn sweep           act on due deadlines once (unpaid orders past their deadline)
    shequn settle          settle sharers' commissions for a batch: withdraw and pay out
    shequn book-commissions  book every paid, attributed order's commission still missing
    shequn messages import   import group messages (WeCom chat archive, JSONL, CSV)
    shequn demand classify   label group messages: JSON lines in, JSON lines out (stable)
    shequn demand train      rebuild the shipped message classifier from data/demand/
    shequn demand evaluate   the classifier's quality on the corpus's held-out split
    shequn seed-demo       load the demo chain (--stores, --members, --reset)
    shequn bootstrap       create a chain and its first HQ admin on an empty database
    shequn token create    issue an API token for a staff account
    shequn manage ...      any Django management command (check --deploy, shell, ...)

Bad input ends with a one-line message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# One account per role, plus a second store manager to see that stores don't see each other.
FEATURED_LOGINS = (
    "admin",
    "hq_ops",
    "region1",
    "store01_manager",
    "store02_manager",
    "store01_ops",
    "store01_cashier1",
    "supplier",
)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn.settings.dev")
    import django

    django.setup()


def _fail(message: str, code: int = 2) -> int:
    print(f"shequn: {message}", file=sys.stderr)
    return code


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("数据库已是最新结构。")
    return 0


def _progress_printer() -> tuple[Any, Callable[[str, int, int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}

    def update(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = progress.add_task(step, total=total)
        progress.update(tasks[step], completed=done, total=total)

    return progress, update


def _seed(stores: int, members: int, reset: bool) -> int:
    from shequn.demo import seed_demo
    from shequn.org.models import OrgNode

    if stores < 1 or stores > 200:
        return _fail("--stores 须在 1 到 200 之间")
    if members < 0 or members > 200_000:
        return _fail("--members 须在 0 到 200000 之间")
    if OrgNode.objects.filter(code="demo-hq").exists():
        if not reset:
            print("演示数据已存在, 跳过加载(如需重建: shequn seed-demo --reset)。")
            return 0
        _reset_database()
    progress, update = _progress_printer()
    with progress:
        summary = seed_demo(stores=stores, members=members, progress=update)
    print(
        f"已加载演示连锁「{summary.chain.name}」: {summary.stores} 家门店, {summary.groups} 个社群, "
        f"{summary.members} 名会员(其中 {summary.real_joins} 人通过真实扫码入群), "
        f"{summary.orders} 笔订单。"
    )
    return 0


def _reset_database() -> None:
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)  # seeding an empty file just works
    return _seed(args.stores, args.members, args.reset)


def _print_logins(host: str, port: int) -> None:
    from shequn.demo import DEMO_PASSWORD, demo_logins

    logins = demo_logins()
    print()
    print(f"Shequn 演示环境: http://{host}:{port}/   (API 文档: http://{host}:{port}/api/docs)")
    print(f"所有演示账号的密码: {DEMO_PASSWORD}")
    by_username = {username: (role, node) for username, role, node in logins}
    for username in FEATURED_LOGINS:
        if username in by_username:
            role, node = by_username[username]
            print(f"  {username:<20} {role:<12} {node}")
    print(
        f"  …共 {len(logins)} 个员工账号(store01..storeNN_manager / _ops / _cashier1 / _cashier2)"
    )
    from shequn.groups.models import CustomerGroup

    group = CustomerGroup.objects.order_by("id").first()
    if group is not None:
        print(f"会员端(用手机或浏览器手机模式打开): http://{host}:{port}/m/g/{group.pk}/")
    print()


def cmd_demo(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    code = _seed(args.stores, args.members, args.reset)
    if code:
        return code
    _print_logins(args.host, args.port)
    if args.no_serve:
        return 0
    return _serve(args)


def _start_payment_simulator(host: str, port: int, simulator_port: int) -> None:
    """Point the merchant settings at a local simulated WeChat Pay gateway (demo only)."""
    from django.conf import settings

    from shequn.demo import DEMO_APPID, DEMO_MCHID
    from shequn.integrations.wechatpay.simulator import start_local_gateway

    server, config = start_local_gateway(
        settings.VAR_DIR / "wechatpay-simulator",
        mchid=DEMO_MCHID,
        appid=DEMO_APPID,
        host=host,
        port=simulator_port,
    )
    settings.SHEQUN_WECHATPAY = config
    settings.SHEQUN_PUBLIC_URL = f"http://{host}:{port}"
    print(
        f"模拟微信支付网关: {config['API_BASE']} (商户号 {DEMO_MCHID}; 仅用于演示, 不产生真实扣款)"
    )


def _serve(args: argparse.Namespace) -> int:
    from shequn.server import serve, unsafe_for_serving
    from shequn.wsgi import application

    host, port = args.host, args.port
    if args.workers < 1 or args.threads < 1:
        return _fail("--workers 和 --threads 须为正整数")
    problems = unsafe_for_serving()
    if problems and not args.dev:
        return _fail(
            "拒绝以开发配置提供服务: "
            + "; ".join(problems)
            + "。生产环境请设置 DJANGO_SETTINGS_MODULE=shequn.settings.production 和 SECRET_KEY;"
            " 仅在本机开发时可加 --dev"
        )
    if problems:
        print("开发模式, 仅供本机开发和演示, 不要对外提供服务: " + "; ".join(problems))
    if args.simulate_payments:
        _start_payment_simulator(host, port, args.simulator_port)
    how = f"{args.workers} 个进程" if args.workers > 1 else f"1 个进程, {args.threads} 个线程"
    print(f"正在 http://{host}:{port}/ 提供服务 ({how}; Ctrl+C 退出)", flush=True)
    serve(
        application,
        host=host,
        port=port,
        workers=args.workers,
        threads=args.threads,
        sweep_interval_s=args.sweep_interval,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from shequn.sweeper import run_due_sweeps

    if args.batch < 1 or args.pause_ms < 0:
        return _fail("--batch 须为正整数, --pause-ms 不能为负")
    done = run_due_sweeps(pause_s=args.pause_ms / 1000, batch=args.batch)
    for name, count in done.items():
        print(f"{name}: {count}")
    return 0


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


def cmd_demand_classify(args: argparse.Namespace) -> int:
    from shequn.demand.jsonl import BadLine, classify_lines

    try:
        classify_lines(sys.stdin.buffer, sys.stdout)  # bytes: bad UTF-8 is named, not patched
    except BadLine as bad:
        return _fail(str(bad))
    return 0


def cmd_demand_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shequn.demand import training

    corpus = Path(args.corpus)
    extra = Path(args.polarity_extra) if args.polarity_extra else None
    for path in (corpus, extra):
        if path is not None and not path.is_file():
            return _fail(f"找不到文件: {path}")
    examples = training.load_corpus(corpus)
    reviews = training.load_reviews(extra) if extra else []
    model = training.train(
        examples, polarity_extra=reviews, note=f"{corpus.name} + {len(reviews)} 条评价"
    )
    out = Path(args.out)
    training.save(model, out)
    evaluation = training.evaluate(model, examples)
    print(f"已训练 {len(examples)} 条语料(+{len(reviews)} 条评价) → {out}")
    print(f"留出集 macro-F1 {evaluation.macro_f1:.3f}")
    return 0


def cmd_demand_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shequn.demand import training
    from shequn.demand.classifier import shipped_model

    corpus = Path(args.corpus)
    if not corpus.is_file():
        return _fail(f"找不到文件: {corpus}")
    evaluation = training.evaluate(shipped_model(), training.load_corpus(corpus))
    print(evaluation.report)
    print(f"macro-F1 {evaluation.macro_f1:.3f}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from django.db import transaction

    from shequn.core.errors import DomainError
    from shequn.org import actions
    from shequn.org.models import OrgNode
    from shequn.org.roles import Role

    if OrgNode.objects.filter(code=args.code).exists():
        return _fail(f"编码 {args.code} 已存在")
    password = args.password or os.environ.get("SHEQUN_ADMIN_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            return _fail("请用 --password 或 SHEQUN_ADMIN_PASSWORD 提供管理员密码")
        password = getpass.getpass("管理员密码: ")
    try:
        with transaction.atomic():  # both or neither
            chain = actions.create_chain(name=args.name, code=args.code)
            actions.create_staff(
                acting=None,
                node=chain,
                role=Role.HQ_ADMIN,
                username=args.admin,
                password=password,
                display_name=args.admin_name,
            )
    except DomainError as exc:
        return _fail(exc.message)
    print(f"已创建连锁「{chain.name}」和总部管理员 {args.admin}。")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from django.contrib.auth import get_user_model

    from shequn.org.actions import issue_api_token

    user = get_user_model().objects.filter(username=args.username, is_active=True).first()
    if user is None or not hasattr(user, "staff"):
        return _fail(f"没有名为 {args.username} 的在职员工账号")
    issued = issue_api_token(user=user, name=args.name)
    print(issued.secret)
    print("(令牌只显示这一次; 请求时使用 Authorization: Bearer <令牌>)", file=sys.stderr)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["shequn manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shequn",
        description="Shequn 社群新零售平台。默认使用 var/shequn.sqlite3; "
        "设置 DATABASE_URL=postgresql://... 改用 PostgreSQL。",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="每个子命令都有 --help, 例如: shequn seed-demo --help",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="打印更多过程信息")
    sub = parser.add_subparsers(dest="command", metavar="命令", required=True)

    def server_args(p: argparse.ArgumentParser, *, simulate: bool) -> None:
        p.add_argument("--host", default=DEFAULT_HOST, help=f"监听地址 (默认 {DEFAULT_HOST})")
        p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"端口 (默认 {DEFAULT_PORT})")
        p.add_argument(
            "--workers",
            type=int,
            default=1,
            help="进程数 (默认 1)。大于 1 时用 gunicorn 多进程, 每个进程一次处理一个请求, "
            "建议 CPU 核数+1, 并在前面放 nginx 等反向代理",
        )
        p.add_argument("--threads", type=int, default=8, help="单进程时的工作线程数 (默认 8)")
        p.add_argument(
            "--sweep-interval",
            type=float,
            default=30.0,
            help="到期处理(超时未支付订单等)的间隔秒数, 0 表示不在本进程运行 (默认 30)",
        )
        p.add_argument(
            "--simulate-payments",
            action=argparse.BooleanOptionalAction,
            default=simulate,
            help="在本机启动模拟微信支付网关并用它收款(演示用; "
            f"{'默认开启' if simulate else '默认关闭, 生产环境请配置 WECHATPAY_* 环境变量'})",
        )
        p.add_argument(
            "--simulator-port", type=int, default=8001, help="模拟支付网关端口 (默认 8001)"
        )

    def seed_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stores", type=int, default=12, help="门店数 (默认 12, 每店 5 个社群)")
        p.add_argument("--members", type=int, default=5000, help="会员数 (默认 5000)")
        p.add_argument("--reset", action="store_true", help="清空数据库后重新加载")

    p = sub.add_parser(
        "demo",
        help="一条命令体验: 迁移、加载演示连锁、启动服务并打印登录账号",
        description="迁移数据库, 如果还没有演示数据就加载(总部、3 个大区、12 家门店、约 60 个社群、"
        "约 5000 名会员、各角色员工), 打印登录账号, 然后在本机启动服务。",
    )
    server_args(p, simulate=True)
    seed_args(p)
    p.add_argument("--no-serve", action="store_true", help="只准备数据, 不启动服务")
    p.set_defaults(func=cmd_demo, dev=True)  # the demo is the development settings' purpose

    p = sub.add_parser(
        "serve",
        help="启动 Web 服务 (后台、API、入群页)",
        description="单进程用 waitress (多线程); --workers 大于 1 时用 gunicorn 多进程, "
        "到期处理只在一个单独的进程里运行。",
    )
    server_args(p, simulate=False)
    p.add_argument(
        "--dev",
        action="store_true",
        help="本机开发: 允许以开发配置启动 (公开的开发密钥、DEBUG、登录页显示短信验证码)。"
        "不加时, 以这样的配置启动会被拒绝",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "sweep",
        help="处理到期事项一次(关闭超时未支付订单并释放库存; 判定到期的拼团并为未成团的付款人发起退款; 生成未来 7 天的周期活动; 重新提交未送达的退款)",
        description="幂等: 重复运行或中途被杀后再运行, 每笔到期事项只处理一次。"
        "serve 已每 30 秒自动运行; 多进程部署时也可由 cron 或 Celery beat 调用。",
    )
    p.add_argument("--batch", type=int, default=500, help="每批处理条数 (默认 500)")
    p.add_argument("--pause-ms", type=int, default=0, help="每条之间暂停毫秒数, 减轻数据库压力")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("migrate", help="应用数据库迁移", description="把数据库结构更新到最新。")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "seed-demo",
        help="加载演示连锁数据",
        description="加载确定性的演示数据: 真实感的中文姓名与手机号, 显示进度条。已存在时跳过。",
    )
    seed_args(p)
    p.set_defaults(func=cmd_seed_demo)

    p = sub.add_parser(
        "bootstrap",
        help="在空数据库上创建连锁和第一个总部管理员",
        description="生产环境第一次启动时使用。密码可用 --password 或环境变量 SHEQUN_ADMIN_PASSWORD 提供。",
    )
    p.add_argument("--name", required=True, help="连锁名称, 如 邻里优选")
    p.add_argument("--code", required=True, help="总部编码 (小写字母、数字、-)")
    p.add_argument("--admin", required=True, help="管理员用户名")
    p.add_argument("--admin-name", default="总部管理员", help="管理员姓名")
    p.add_argument("--password", help="管理员密码 (不推荐在命令行中传入)")
    p.set_defaults(func=cmd_bootstrap)

    p = sub.add_parser(
        "settle",
        help="佣金结算: 为推客提现并出款(可重复运行)",
        description="把每位已通过审核的推客的可提现佣金(不低于最低提现额)提现并出款。"
        "每个批次每位推客只结算一次; 中途被杀后再运行, 会完成剩下的部分。",
    )
    p.add_argument("label", help="批次名称, 如 2026-11")
    p.add_argument("--chain", required=True, help="连锁代码 (总部节点的 code)")
    p.add_argument("--pause-ms", type=int, default=0, help="每位推客之间暂停毫秒数")
    p.set_defaults(func=cmd_settle)

    p = sub.add_parser(
        "book-commissions",
        help="补记佣金: 为已支付、有推客的订单批量入账尚未入账的佣金(可重复运行)",
        description="按与支付时相同的规则(商品/类目/角色/默认比例, 两级, 风控待审核)为尚未入账的"
        "已支付推客订单批量记账, 用于导入的历史订单或补账。每批订单一个事务; 重复运行不会重复入账。",
    )
    p.add_argument("--chain", required=True, help="连锁代码 (总部节点的 code)")
    p.add_argument("--chunk", type=int, default=20_000, help="每个事务处理的订单数 (默认 20000)")
    p.set_defaults(func=cmd_book_commissions)

    p = sub.add_parser(
        "messages",
        help="群消息: 导入 (企业微信会话存档 / JSONL / CSV)",
        description="群消息的导入与管理。",
    )
    messages_sub = p.add_subparsers(dest="messages_command", metavar="操作", required=True)
    m = messages_sub.add_parser(
        "import",
        help="导入群消息文件, 显示进度; 重复导入不会重复入库",
        description="读取企业微信会话内容存档(解密后的 JSON 行)、通用 JSON 行或 CSV"
        " (列: msgid, chat_id 或 group_id, sender, time, type, content)。"
        "无法读取的记录按行号报告并跳过, 其余逐条完整入库; 有跳过的记录时退出码为 3。",
    )
    m.add_argument("file", help="消息文件 (.jsonl / .csv)")
    m.add_argument("--chain", required=True, help="连锁代码 (总部节点的 code)")
    m.add_argument("--batch", type=int, default=5000, help="每批入库条数 (默认 5000)")
    m.set_defaults(func=cmd_messages_import)

    p = sub.add_parser(
        "demand",
        help="需求河: 群消息分类模型 (classify / train / evaluate)",
        description="群消息的六类标签: need 需求/痛点, complaint 投诉, praise 表扬, "
        "question 咨询, ad 广告, chitchat 闲聊。",
    )
    demand_sub = p.add_subparsers(dest="demand_command", metavar="操作", required=True)
    d = demand_sub.add_parser(
        "classify",
        help="从标准输入读 JSON 行 {id, text}, 向标准输出逐行写 {id, label, score}",
        description='输入每行一个 {"id": ..., "text": "..."}; 输出与输入同序, 每行一个 '
        '{"id": ..., "label": ..., "score": ...}。格式错误的行会报出行号并以退出码 2 结束。'
        "此接口供其他工具调用, 保持稳定。",
    )
    d.set_defaults(func=cmd_demand_classify)
    from shequn.demand.training import CORPUS

    d = demand_sub.add_parser(
        "train",
        help="用语料重新训练分类模型",
        description="用 data/demand/messages.jsonl 的训练集训练六分类模型和投诉/表扬模型;"
        " 可用 --polarity-extra 加入本连锁自己的评价数据 (CSV: label=1 好评, review)。",
    )
    d.add_argument("--corpus", default=str(CORPUS), help="语料 JSONL (默认项目语料)")
    d.add_argument("--polarity-extra", default="", help="额外的好评/差评 CSV (label, review)")
    d.add_argument("--out", required=True, help="模型输出路径 (.joblib)")
    d.set_defaults(func=cmd_demand_train)
    d = demand_sub.add_parser(
        "evaluate",
        help="在语料的固定留出集上评估随包模型",
        description="打印每类的准确率/召回率和 macro-F1。",
    )
    d.add_argument("--corpus", default=str(CORPUS), help="语料 JSONL (默认项目语料)")
    d.set_defaults(func=cmd_demand_evaluate)

    p = sub.add_parser(
        "wecom",
        help="企业微信: 按企业微信的群成员列表全量同步社群成员",
        description="企业微信的群变更回调可能丢失或乱序; 回调接不上时社群会被标记,"
        " 由定时任务自动全量同步。此命令立即同步: 已知会员在企业微信群而不在社群的入群,"
        " 有企业微信身份却已不在企业微信群的退群。",
    )
    wecom_sub = p.add_subparsers(dest="wecom_command", metavar="操作", required=True)
    w = wecom_sub.add_parser(
        "resync",
        help="读取企业微信群成员 (groupchat/get) 并同步社群成员, 显示进度",
        description="需要 WECOM_CORP_ID 和 WECOM_CONTACT_SECRET (客户联系 secret)。"
        " 不指定 --group 时同步本连锁所有已关联企业微信的活跃社群; 有失败时退出码为 3。",
    )
    w.add_argument("--chain", required=True, help="连锁代码 (总部节点的 code)")
    w.add_argument("--group", type=int, action="append", default=[], help="社群 ID, 可重复")
    w.set_defaults(func=cmd_wecom_resync)

    p = sub.add_parser("token", help="API 令牌", description="管理 API 令牌。")
    token_sub = p.add_subparsers(dest="token_command", metavar="操作", required=True)
    t = token_sub.add_parser("create", help="为员工发放 API 令牌 (打印到标准输出)")
    t.add_argument("username", help="员工用户名")
    t.add_argument("--name", default="cli", help="令牌用途说明")
    t.set_defaults(func=cmd_token_create)

    p = sub.add_parser(
        "manage",
        help="运行 Django 管理命令, 如: shequn manage check --deploy",
        description="把其余参数原样交给 Django 的 manage.py。",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="管理命令及其参数")
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_django()
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one line, non-zero
        if args.verbose:
            raise
        from shequn.core.errors import DomainError

        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        return _fail(message, 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
