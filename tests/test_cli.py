"""The `shequn` command: help that explains, one-line errors with non-zero exits, demo seeding.

Each test runs the real command in a subprocess against its own SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SUBCOMMANDS = [
    "demo",
    "serve",
    "sweep",
    "settle",
    "book-commissions",
    "migrate",
    "seed-demo",
    "bootstrap",
    "token",
    "manage",
    "messages",
    "demand",
    "wecom",
]
GOOD_SECRET_KEY = "k" * 20 + "Zq9!xP2@vL7#mN4$tR8%wY3^bC6&dF1*"


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The command's environment: its own SQLite file under ``tmp_path``, default settings."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["SHEQUN_VAR_DIR"] = str(tmp_path / "var")
    return env


def run(
    *args: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shequn.cli", *args],
        capture_output=True,
        text=True,
        env={**cli_env(tmp_path), **(extra_env or {})},
        timeout=300,
        check=False,
    )


def test_top_level_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout
    assert "社群新零售" in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_command_has_help(tmp_path: Path, name: str) -> None:
    result = run(name, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage: shequn" in result.stdout


def test_bad_input_is_one_line_and_non_zero(tmp_path: Path) -> None:
    assert run("migrate", tmp_path=tmp_path).returncode == 0
    result = run("seed-demo", "--stores", "0", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--stores" in result.stderr
    result = run("token", "create", "nobody", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "nobody" in result.stderr
    result = run(
        "bootstrap",
        "--name",
        "x",
        "--code",
        "c1",
        "--admin",
        "boss",
        "--password",
        "123",
        tmp_path=tmp_path,
    )
    assert result.returncode == 2
    assert "密码" in result.stderr
    ok = run(
        "bootstrap",
        "--name",
        "x",
        "--code",
        "c1",
        "--admin",
        "boss",
        "--password",
        "Boss-pass-2026",
        tmp_path=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr  # the refused attempt above left nothing behind


def test_seed_demo_then_token(tmp_path: Path) -> None:
    result = run("seed-demo", "--stores", "2", "--members", "300", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 家门店, 10 个社群, 300 名会员" in result.stdout
    with sqlite3.connect(tmp_path / "var" / "shequn.sqlite3") as db:  # promotions are live
        teams = db.execute("SELECT status, joined FROM promotions_groupbuyteam ORDER BY id")
        assert teams.fetchall() == [("succeeded", 3), ("forming", 2)]
        assert db.execute("SELECT count(*) FROM promotions_flashsale").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM referrals_sharer").fetchone() == (20,)
        (accrued,) = db.execute("SELECT count(*) FROM referrals_ordercommission").fetchone()
        assert accrued > 0  # paid demo orders brought by sharers earned commission
        proposal = db.execute("SELECT status, committed_units FROM demand_proposal").fetchall()
        assert len(proposal) == 1
        assert proposal[0][0] == "open"
        assert proposal[0][1] > 0  # paid deposits count
    again = run("seed-demo", "--stores", "2", "--members", "300", tmp_path=tmp_path)
    assert again.returncode == 0
    assert "已存在" in again.stdout
    token = run("token", "create", "store01_manager", tmp_path=tmp_path)
    assert token.returncode == 0
    assert token.stdout.startswith("sq_")


def test_wecom_resync_reads_the_members_back_with_progress(tmp_path: Path) -> None:
    """``shequn wecom resync`` against a simulated WeCom on loopback: a customer of the WeCom
    group who is a known member joins; not configured or an unknown chain: one line, exit 2."""
    from shequn.integrations.wecom.simulator import SimulatedWeCom, serve_in_thread

    assert run("seed-demo", "--stores", "1", "--members", "30", tmp_path=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "var" / "shequn.sqlite3") as db:
        (group,) = db.execute("SELECT min(id) FROM groups_customergroup").fetchone()
        db.execute(
            "UPDATE groups_customergroup SET external_chat_id = 'wrCLI' WHERE id = ?", [group]
        )
        chain, member = db.execute(
            "SELECT chain_id, id FROM members_member WHERE id NOT IN"
            " (SELECT member_id FROM groups_groupmembership WHERE group_id = ?) LIMIT 1",
            [group],
        ).fetchone()
        db.execute(
            "INSERT INTO members_channelidentity (chain_id, member_id, channel, value, created_at)"
            " VALUES (?, ?, 'wecom_external_userid', 'wmCLI0001', '2026-11-25 00:00:00')",
            [chain, member],
        )
        (code,) = db.execute("SELECT code FROM org_orgnode WHERE id = ?", [chain]).fetchone()
    assert run("wecom", "resync", "--chain", code, tmp_path=tmp_path).returncode == 2  # no secret

    wecom = SimulatedWeCom(corp_id="wwCLI", secret="s3cret")
    wecom.create_chat("wrCLI")
    wecom.add_members("wrCLI", ["wmCLI0001", "wmSomeoneElse"])
    server = serve_in_thread(wecom)
    configured = {
        "WECOM_CORP_ID": "wwCLI",
        "WECOM_CONTACT_SECRET": "s3cret",
        "WECOM_API_BASE": f"http://127.0.0.1:{server.server_port}",
    }
    try:
        unknown = run("wecom", "resync", "--chain", "nope", tmp_path=tmp_path, extra_env=configured)
        assert (unknown.returncode, unknown.stderr.strip().count("\n")) == (2, 0)
        done = run(
            "wecom", "resync", "--chain", code, "--group", str(group),
            tmp_path=tmp_path, extra_env=configured,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert "入群 1 人" in done.stdout
    assert "1 人不是本连锁已知会员" in done.stdout
    assert "同步社群 1 个, 失败 0 个" in done.stdout
    with sqlite3.connect(tmp_path / "var" / "shequn.sqlite3") as db:
        joined = db.execute(
            "SELECT join_channel FROM groups_groupmembership"
            " WHERE group_id = ? AND member_id = ? AND left_at IS NULL",
            [group, member],
        ).fetchall()
    assert joined == [("wecom",)]


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    result = run(
        "manage",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        extra_env={
            "DJANGO_SETTINGS_MODULE": "shequn.settings.production",
            "SECRET_KEY": GOOD_SECRET_KEY,
            "ALLOWED_HOSTS": "shequn.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("weak", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SHEQUN_MESSAGE_WEBHOOK_SECRET": "too-short"}, "SHEQUN_MESSAGE_WEBHOOK_SECRET"),
    ],
)
def test_production_refuses_a_weak_secret(tmp_path: Path, weak: dict[str, str], named: str) -> None:
    production = {"DJANGO_SETTINGS_MODULE": "shequn.settings.production"}
    result = run(
        "manage",
        "check",
        tmp_path=tmp_path,
        extra_env={**production, "SECRET_KEY": GOOD_SECRET_KEY, **weak},
    )
    assert result.returncode != 0
    assert named in result.stderr


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_serve_with_workers_forks_them_and_one_sweeper(tmp_path: Path) -> None:
    """``--workers 2``: gunicorn's master, two workers and one sweeper process (the sweeps run
    once per server, not once per worker); it answers; SIGTERM stops all of them."""
    import signal
    import socket
    import time
    import urllib.request

    assert run("migrate", tmp_path=tmp_path).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "shequn.cli",
            "serve",
            "--dev",
            "--workers",
            "2",
            "--port",
            str(port),
            "--sweep-interval",
            "0.2",
        ],  # fmt: skip
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json") as reply:  # noqa: S310
                    assert reply.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.2)
        for _ in range(50):  # gunicorn's master forks the workers; when_ready the sweeper
            children = _children(server.pid)
            if len(children) == 3:
                break
            time.sleep(0.1)
        assert len(children) == 3, children
        for _ in range(4):  # served by whichever worker is free
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json") as reply:  # noqa: S310
                assert reply.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    for child in children:
        assert (
            not Path(f"/proc/{child}").exists()
            or "zombie" in Path(f"/proc/{child}/status").read_text()
        )


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    result = run("serve", "--workers", "0", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("settings_env", "named"),
    [
        ({}, "SECRET_KEY"),  # no settings at all: the development settings, public dev key
        ({"SECRET_KEY": GOOD_SECRET_KEY}, "SHEQUN_SMS_BACKEND=display"),
        ({"SECRET_KEY": GOOD_SECRET_KEY, "SHEQUN_SMS_BACKEND": "log"}, "DEBUG"),
    ],
)
def test_serve_refuses_development_settings(
    tmp_path: Path, settings_env: dict[str, str], named: str
) -> None:
    """Without --dev, ``shequn serve`` does not start on what only development may use (it
    used to serve them: forgeable member tokens, login codes on the page)."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "shequn.cli", "serve", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        env={**cli_env(tmp_path), **settings_env},
        timeout=60,  # a server that starts never ends: the test fails on the timeout
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert named in result.stderr
    assert "--dev" in result.stderr
    assert result.stdout == ""


def test_serve_starts_on_safe_settings_and_with_dev(tmp_path: Path) -> None:
    import signal
    import time
    import urllib.request

    assert run("migrate", tmp_path=tmp_path).returncode == 0
    safe = {"SECRET_KEY": GOOD_SECRET_KEY, "SHEQUN_SMS_BACKEND": "log", "DEBUG": "0"}
    for args, settings_env in ((["serve"], safe), (["serve", "--dev"], {})):
        port = _free_port()
        command = [sys.executable, "-m", "shequn.cli", *args, "--port", str(port)]
        server = subprocess.Popen(  # noqa: S603
            [*command, "--sweep-interval", "0"],
            env={**cli_env(tmp_path), **settings_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/") as reply:  # noqa: S310
                        assert reply.status == 200
                        break
                except OSError:
                    assert server.poll() is None, server.communicate()
                    assert time.monotonic() < deadline, "the server did not answer"
                    time.sleep(0.2)
        finally:
            server.send_signal(signal.SIGINT)
            stdout, _ = server.communicate(timeout=60)
        assert ("开发模式" in stdout) == ("--dev" in args), stdout


def test_messages_import_of_a_csv_file_finishes_with_its_summary(tmp_path: Path) -> None:
    """``shequn messages import FILE.csv``: the rows are stored, the progress bar's last update
    (after the reader has finished with the file) does not crash, the summary is printed, exit 0;
    a second import adds nothing."""
    assert run("seed-demo", "--stores", "1", "--members", "30", tmp_path=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "var" / "shequn.sqlite3") as db:
        (group,) = db.execute("SELECT min(id) FROM groups_customergroup").fetchone()
        (code,) = db.execute("SELECT code FROM org_orgnode WHERE kind = 'hq'").fetchone()
    csv_file = tmp_path / "messages.csv"
    csv_file.write_text(
        "msgid,group_id,sender,time,type,content\n"
        f"cli-1,{group},wmNobody,2026-11-24T09:30:00+08:00,text,要是有小包装的艾灸贴就好了\n"
        f"cli-2,{group},wmNobody,2026-11-24T09:31:00+08:00,text,昨天买的草莓一半是烂的\n",
        encoding="utf-8",
    )
    done = run("messages", "import", str(csv_file), "--chain", code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "读取 2 条, 新增 2 条, 重复 0 条, 单聊跳过 0 条, 无法读取 0 条" in done.stdout
    again = run("messages", "import", str(csv_file), "--chain", code, tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "读取 2 条, 新增 0 条, 重复 2 条" in again.stdout
