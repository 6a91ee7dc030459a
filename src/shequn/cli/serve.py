"""`shequn serve` and `shequn sweep`: the web server (waitress, or gunicorn with --workers),
optionally with the local payment simulator, and one pass of the due-deadline sweeps."""

from __future__ import annotations

import argparse

from ._common import _fail

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


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
