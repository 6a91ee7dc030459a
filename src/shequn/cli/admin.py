"""Operating the installation: `shequn migrate`, `shequn bootstrap` (the first chain and its HQ
admin), `shequn token create` and `shequn manage` (any Django management command)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ._common import _fail


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("数据库已是最新结构。")
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
