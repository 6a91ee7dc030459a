"""`shequn demo` and `shequn seed-demo`: load the demo chain (with a progress bar), print its
logins, and serve it."""

from __future__ import annotations

import argparse

from ._common import _fail, _progress_printer
from .serve import _serve

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
