"""Settlement: every approved sharer's withdrawable commission is withdrawn and paid out once per
batch; a payout the gateway refuses goes back to available; the real `shequn settle` killed with
SIGKILL mid-batch and started again completes the batch exactly once, the ledger balanced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from shequn.members.models import Member
from shequn.referrals.actions import (
    apply_as_sharer,
    decide_sharer,
    open_settlement,
    run_settlement,
)
from shequn.referrals.ledger import chain_account, post, sharer_account
from shequn.referrals.models import AccountKind, LedgerTransaction, Payout, PayoutStatus
from tests.conftest import Chain, build_chain, phone
from tests.orders.test_sweeper_crash import database_url
from tests.referrals.test_ledger import ledger_is_consistent

MIN = 1000


def sharers_with(chain: Chain, amounts: list[int]) -> list[Member]:
    """Approved sharers holding ``amounts`` fen available (an adjustment seeds each)."""
    made = []
    for n, amount in enumerate(amounts):
        member = Member.objects.create(
            chain=chain.hq, phone=phone(5000 + n), home_store=chain.store_a
        )
        decide_sharer(acting=chain.manager_a, sharer=apply_as_sharer(member=member), approve=True)
        if amount:
            post(
                chain_id=chain.hq.pk,
                kind="adjustment",
                key=f"seed:{member.pk}",
                legs=[
                    (chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE), -amount),
                    (sharer_account(member, AccountKind.AVAILABLE), amount),
                ],
            )
        made.append(member)
    return made


def available(member: Member) -> int:
    return sharer_account(member, AccountKind.AVAILABLE).balance_fen


@pytest.mark.django_db
def test_a_batch_pays_each_sharer_once_and_returns_refused_payouts(chain: Chain) -> None:
    rich, small, big, none = sharers_with(chain, [5000, 999, 250_000, 0])
    batch = open_settlement(acting=chain.hq_operator, label="2026-11")
    assert run_settlement(batch, min_fen=MIN) == {"withdrawn": 2, "paid": 1, "failed": 1}
    assert run_settlement(batch, min_fen=MIN) == {"withdrawn": 0, "paid": 0, "failed": 0}
    assert (available(rich), available(small), available(big), available(none)) == (
        0,
        999,  # below the minimum: stays
        250_000,  # ¥2,500 refused by the gateway without a real name: back to available
        0,
    )
    assert chain_account(chain.hq.pk, AccountKind.PAYOUT_CLEARING).balance_fen == 5000
    failed = Payout.objects.get(member=big)
    assert failed.status == PayoutStatus.FAILED
    assert "姓名" in failed.failure_reason
    assert open_settlement(acting=chain.hq_operator, label="2026-11").pk == batch.pk
    ledger_is_consistent()


def settle(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env["DATABASE_URL"] = database_url()
    return subprocess.Popen(
        [sys.executable, "-m", "shequn.cli", "settle", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_kill_9_mid_batch_then_restart_settles_exactly_once() -> None:
    chain = build_chain()
    sharers = sharers_with(chain, [2000 + n for n in range(40)])
    code = chain.hq.code

    process = settle("2026-11", "--chain", code, "--pause-ms", "40")
    deadline = time.monotonic() + 60
    withdrawn = LedgerTransaction.objects.filter(kind="withdraw")
    while withdrawn.count() < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    killed_at = withdrawn.count()
    assert process.returncode == -signal.SIGKILL
    assert 8 <= killed_at < len(sharers), f"the kill must land mid-batch ({killed_at})"

    restarted = settle("2026-11", "--chain", code)
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    assert f"提现 {len(sharers) - killed_at} 人" in out
    assert withdrawn.count() == Payout.objects.count() == len(sharers)
    assert Payout.objects.filter(status=PayoutStatus.SUCCEEDED).count() == len(sharers)
    assert all(available(m) == 0 for m in sharers)
    paid_out = chain_account(chain.hq.pk, AccountKind.PAYOUT_CLEARING).balance_fen
    assert paid_out == sum(2000 + n for n in range(40))
    ledger_is_consistent()
