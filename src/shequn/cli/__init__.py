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

The parser and ``main`` live here; each area's commands live in a module of their own
(``serve``, ``demo``, ``admin``, ``money``, ``messages``, ``demand``, ``wecom``), sharing the
helpers in ``_common``. ``python -m shequn.cli`` runs ``__main__``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from ._common import _fail
from .admin import cmd_bootstrap, cmd_manage, cmd_migrate, cmd_token_create
from .demand import cmd_demand_classify, cmd_demand_evaluate, cmd_demand_train
from .demo import cmd_demo, cmd_seed_demo
from .messages import cmd_messages_import
from .money import cmd_book_commissions, cmd_settle
from .serve import DEFAULT_HOST, DEFAULT_PORT, cmd_serve, cmd_sweep
from .wecom import cmd_wecom_resync


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn.settings.dev")
    import django

    django.setup()


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
