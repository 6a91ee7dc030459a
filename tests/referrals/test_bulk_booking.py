"""``book_commissions`` books in sets exactly what the per-order path would: the same rates
(product, category, role, default, blended), the same two levels, the same fraud holds, on what
was paid net of refunds; under the same keys, so a rerun or an order the payment already booked
is never booked twice, and the ledger still balances to the fen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from django.db.models import Sum

from shequn.catalog import actions as catalog
from shequn.core import timeutil
from shequn.members.models import ChannelIdentity, IdentityChannel, Member
from shequn.orders.actions import verify_pickup
from shequn.orders.models import Order
from shequn.referrals import commission
from shequn.referrals.actions import (
    _rates_for_order,
    fraud_signal,
    release_due_commissions,
    set_commission_rule,
)
from shequn.referrals.bulk import book_commissions
from shequn.referrals.ledger import balance_from_postings
from shequn.referrals.models import (
    Account,
    CommissionStatus,
    LedgerTransaction,
    OrderCommission,
    Posting,
    Sharer,
    SharerStatus,
)
from shequn.referrals.policy import freeze_period
from tests.conftest import Chain, build_chain, make_sku
from tests.orders.test_sweeper_crash import database_url
from tests.referrals.test_commission_lifecycle import (
    approved_sharer,
    held,
    member,
    refund_in_full,
)
from tests.referrals.test_fraud_holds import paid_through

pytestmark = pytest.mark.django_db


def ledger_is_sound() -> None:
    for txn in LedgerTransaction.objects.all():
        assert txn.postings.aggregate(total=Sum("amount_fen"))["total"] == 0, txn.key
    for account in Account.objects.all():
        assert account.balance_fen == balance_from_postings(account), account
        assert account.may_go_negative or account.balance_fen >= 0


def pause(*sharers: Member) -> None:
    """Orders paid while the sharer is suspended are not booked at payment: the bulk run
    books them once the sharer is approved again."""
    Sharer.objects.filter(member__in=sharers).update(status=SharerStatus.SUSPENDED)


def resume(*sharers: Member) -> None:
    Sharer.objects.filter(member__in=sharers).update(status=SharerStatus.APPROVED)


def expected(order: Order, sharer: Member, level: int, net_fen: int) -> dict[str, Any]:
    rate = _rates_for_order(order)[level - 1]
    return {
        "rate_bp": rate.bp,
        "rate": (rate.weight, rate.per),
        "accrued_fen": commission.commission_for(net_fen, rate),
        "hold_reason": fraud_signal(order, sharer),
    }


def test_bulk_books_what_the_per_order_path_would(chain: Chain) -> None:
    rice = make_sku(chain, code="RICE-1", price_fen=3990, stock={chain.store_a: 500})
    other = make_sku(chain, code="OIL-1", price_fen=1250, stock={chain.store_a: 500})
    category = catalog.get_or_create_category(acting=chain.admin, name="粮油")
    type(other.product).objects.filter(pk=other.product_id).update(category=category)
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000, 300])  # default
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1500, 500], category=category)
    set_commission_rule(  # ¥2.00 + ¥0.50 a unit, whatever the price
        acting=chain.hq_operator, rates_bp=[200, 50], product=rice.product, kind="fixed"
    )
    parent = approved_sharer(chain, 1)
    sharer = approved_sharer(chain, 2, invited_by=parent)
    ChannelIdentity.objects.create(
        chain=chain.hq, member=sharer, channel=IdentityChannel.WECHAT_OPENID, value="o-sharer"
    )
    pause(sharer, parent)

    from shequn.orders.actions import LineRequest, place_order
    from tests.orders.test_pickup import pay

    def two_lines(n: int, **extra: Any) -> Order:
        order = place_order(
            member=member(chain, n),
            store=chain.store_a,
            lines=[LineRequest(rice.pk, 1), LineRequest(other.pk, 3)],
            idempotency_key=f"two-{n}",
            sharer=sharer,
            **extra,
        ).order
        assert pay(order, f"T{order.number}") == "paid"
        order.refresh_from_db()
        return order

    blended = two_lines(10)
    partly_refunded = two_lines(11)
    refund_in_full(chain, partly_refunded, amount=1000)
    fully_refunded = two_lines(12)
    refund_in_full(chain, fully_refunded)
    handed_over = two_lines(13)
    verify_pickup(acting=chain.cashier_a, store=chain.store_a, code=handed_over.pickup_code)
    self_paid = paid_through(chain, rice, sharer, member(chain, 14), "own", payer_openid="o-sharer")
    address = {"fulfilment": "delivery", "delivery_address": "长沙市岳麓区某小区 1 栋 101"}
    same_address = [
        paid_through(chain, rice, sharer, member(chain, 20 + n), f"addr{n}", **address)
        for n in range(4)
    ]
    parent_buys = paid_through(chain, rice, sharer, parent, "parent-buys")
    assert not OrderCommission.objects.exists()  # nothing booked while suspended
    resume(sharer, parent)

    orders = [blended, partly_refunded, handed_over, self_paid, *same_address]
    want = {}
    for order in [*orders, fully_refunded, parent_buys]:
        order.refresh_from_db()
        net = order.total_fen - (1000 if order == partly_refunded else 0)
        net = 0 if order == fully_refunded else net
        for level, who in ((1, sharer), (2, parent)):
            if level == 2 and order == parent_buys:
                continue  # the parent bought it: no level 2 on their own purchase
            row = expected(order, sharer, level, net)
            if row["accrued_fen"]:
                want[(order.pk, who.pk)] = {**row, "level": level, "base_fen": net}

    result = book_commissions(chain_id=chain.hq.pk)

    got = {
        (row.order_id, row.member_id): {
            "rate_bp": row.rate_bp,
            "rate": row.rate,
            "accrued_fen": row.accrued_fen,
            "hold_reason": row.hold_reason,
            "level": row.level,
            "base_fen": row.base_fen,
        }
        for row in OrderCommission.objects.all()
    }
    assert got == want
    assert (blended.pk, sharer.pk) in got
    assert got[(blended.pk, parent.pk)]["rate_bp"] > 0
    assert {got[(o.pk, sharer.pk)]["hold_reason"] for o in same_address} == {
        "一周内 4 位顾客使用同一收货地址"
    }
    assert got[(self_paid.pk, sharer.pk)]["hold_reason"] == "付款人是推客本人(同一微信)"
    assert (fully_refunded.pk, sharer.pk) not in got
    assert (parent_buys.pk, parent.pk) not in got
    assert result.commissions == len(want)
    assert result.booked_fen == sum(row["accrued_fen"] for row in want.values())
    assert result.held == sum(1 for row in want.values() if row["hold_reason"])
    held_rows = OrderCommission.objects.filter(status=CommissionStatus.HELD)
    assert held_rows.count() == result.held
    handed = OrderCommission.objects.get(order=handed_over, member=sharer)
    handed_over.refresh_from_db()
    assert handed_over.fulfilled_at is not None
    assert handed.unfreeze_at == handed_over.fulfilled_at + freeze_period(chain.hq.pk)
    ledger_is_sound()
    pending = held(sharer)["pending"] + held(parent)["pending"]
    assert pending == result.booked_fen

    # a rerun books nothing; the sweep releases the handed-over order once its freeze is over
    postings = Posting.objects.count()
    again = book_commissions(chain_id=chain.hq.pk)
    assert (again.commissions, again.booked_fen) == (0, 0)
    assert Posting.objects.count() == postings
    later = timeutil.now() + 2 * freeze_period(chain.hq.pk)
    assert release_due_commissions(now=later) == 2  # handed_over, level 1 and level 2
    ledger_is_sound()


def test_orders_booked_at_payment_are_left_alone_and_chunks_add_up(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    sharer = approved_sharer(chain, 1)
    at_payment = [
        paid_through(chain, sku, sharer, member(chain, 10 + n), f"a{n}") for n in range(3)
    ]
    assert OrderCommission.objects.count() == 3
    pause(sharer)
    later = [paid_through(chain, sku, sharer, member(chain, 20 + n), f"b{n}") for n in range(5)]
    resume(sharer)
    before = held(sharer)["pending"]
    seen: list[tuple[int, int]] = []
    result = book_commissions(
        chain_id=chain.hq.pk, chunk=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(2, 8), (4, 8), (6, 8), (8, 8)]
    assert result.commissions == len(later)
    assert held(sharer)["pending"] - before == 5 * commission.commission_for(3990, 1000)
    assert OrderCommission.objects.count() == 8
    assert LedgerTransaction.objects.filter(order__in=at_payment).count() == 3
    ledger_is_sound()


def book(*args: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env["DATABASE_URL"] = database_url()
    if fault:
        env["SHEQUN_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "shequn.cli", "book-commissions", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_the_command_killed_after_a_chunk_books_the_rest_once_when_started_again() -> None:
    chain = build_chain()
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 100})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000, 200])
    parent = approved_sharer(chain, 1)
    sharer = approved_sharer(chain, 2, invited_by=parent)
    pause(sharer, parent)
    for n in range(8):
        paid_through(chain, sku, sharer, member(chain, 10 + n), f"k{n}")
    resume(sharer, parent)

    unknown = book("--chain", "no-such-chain")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().count("\n") == 0
    assert "no-such-chain" in unknown.stderr

    killed = book("--chain", chain.hq.code, "--chunk", "3", fault="commissions.after_chunk")
    assert killed.returncode == -signal.SIGKILL
    assert OrderCommission.objects.count() == 3 * 2  # the first chunk, both levels, committed
    ledger_is_sound()

    restarted = book("--chain", chain.hq.code, "--chunk", "3")
    assert restarted.returncode == 0, restarted.stderr
    assert "新入账佣金 10 笔" in restarted.stdout  # the other five orders, two levels each
    assert OrderCommission.objects.count() == 16
    assert held(sharer)["pending"] == 8 * commission.commission_for(3990, 1000)
    assert held(parent)["pending"] == 8 * commission.commission_for(3990, 200)
    assert book("--chain", chain.hq.code).stdout.count("新入账佣金 0 笔") == 1
    ledger_is_sound()
