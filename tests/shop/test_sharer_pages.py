"""The sharer's page: apply (free), wait for approval, then share links, earnings and
withdrawals within what is available and above the minimum."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shequn.members.models import Member
from shequn.referrals.actions import decide_sharer, set_commission_rule
from shequn.referrals.ledger import chain_account, post, sharer_account
from shequn.referrals.models import AccountKind, LedgerTransaction, Sharer
from tests.conftest import Chain, make_group, make_sku, phone
from tests.shop.test_shop_pages import log_in

pytestmark = pytest.mark.django_db


def test_apply_approve_share_and_withdraw(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 20})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    group = make_group(chain.manager_a, chain.store_a)
    client = Client()
    client.get(f"/m/g/{group.pk}/")
    log_in(client, phone(5), next_url="/m/sharer/")
    page = client.get("/m/sharer/").content.decode()
    assert 'id="apply-sharer"' in page
    applied = client.post("/m/sharer/apply/", follow=True).content.decode()
    assert "等待门店审核" in applied
    sharer = Sharer.objects.get()
    decide_sharer(acting=chain.manager_a, sharer=sharer, approve=True)
    page = client.get("/m/sharer/").content.decode()
    card = re.search(r'data-kind="product" data-target="(\d+)">.*?data-code="(\w+)"', page, re.S)
    assert card is not None
    assert int(card[1]) == sku.product_id
    assert f"/m/s/{card[2]}/" in page  # the sharer's own short link, and its poster
    assert f"/m/s/{card[2]}/poster.png" in page

    member = Member.objects.get(pk=sharer.member_id)
    post(
        chain_id=chain.hq.pk,
        kind="adjustment",
        key="seed",
        legs=[
            (chain_account(chain.hq.pk, AccountKind.COMMISSION_EXPENSE), -5000),
            (sharer_account(member, AccountKind.AVAILABLE), 5000),
        ],
    )
    for amount, expected in (
        ("5", "最低提现 10.00 元"),
        ("abc", "请输入提现金额"),
        ("60", "余额不足"),
        ("12.345", "请输入提现金额"),
    ):
        reply = client.post(
            "/m/sharer/withdraw/",
            {"amount": amount, "request_key": amount},
            HTTP_REFERER="/m/sharer/",
            follow=True,
        ).content.decode()
        assert expected in reply, amount
    assert not LedgerTransaction.objects.filter(kind="withdraw").exists()
    done = client.post(
        "/m/sharer/withdraw/", {"amount": "20", "request_key": "r1"}, follow=True
    ).content.decode()
    assert "已申请提现 ¥20.00" in done
    assert sharer_account(member, AccountKind.AVAILABLE).balance_fen == 3000
    assert sharer_account(member, AccountKind.IN_FLIGHT).balance_fen == 2000
