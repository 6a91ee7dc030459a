"""The console's 分销 page: applications and held commissions in scope, decided by the roles
that may; the month's commissions as an Excel statement."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from shequn.members.models import ChannelIdentity, IdentityChannel
from shequn.referrals.actions import apply_as_sharer, set_commission_rule
from shequn.referrals.models import CommissionStatus, OrderCommission, Sharer, SharerStatus
from tests.conftest import Chain, client_for, make_sku
from tests.referrals.test_commission_lifecycle import approved_sharer, member
from tests.referrals.test_fraud_holds import paid_through

pytestmark = pytest.mark.django_db


def test_applications_in_scope_are_approved_from_the_console(chain: Chain) -> None:
    mine = apply_as_sharer(member=member(chain, 1))
    theirs = apply_as_sharer(member=member(chain, 2, store=chain.store_b))
    page = client_for(chain.manager_a).get("/referrals/").content.decode()
    assert f'name="id" value="{mine.pk}"' in page
    assert f'name="id" value="{theirs.pk}"' not in page
    client_for(chain.manager_a).post("/referrals/", {"action": "approve", "id": mine.pk})
    assert Sharer.objects.get(pk=mine.pk).status == SharerStatus.APPROVED
    refused = client_for(chain.manager_a).post(
        "/referrals/", {"action": "approve", "id": theirs.pk}
    )
    assert refused.status_code in (302, 404)
    assert Sharer.objects.get(pk=theirs.pk).status == SharerStatus.PENDING


def test_held_commissions_are_released_by_hq_and_exported(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 20})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    sharer = approved_sharer(chain, 1)
    ChannelIdentity.objects.create(
        chain=chain.hq, member=sharer, channel=IdentityChannel.WECHAT_OPENID, value="o-s"
    )
    held = paid_through(chain, sku, sharer, member(chain, 10), "a", payer_openid="o-s")
    paid_through(chain, sku, sharer, member(chain, 11), "b")
    row = OrderCommission.objects.get(order=held)
    page = client_for(chain.manager_a).get("/referrals/").content.decode()
    assert "付款人是推客本人" in page
    leaders = page[page.index('id="leaderboard"') :].split("</table>")[0]
    assert f"尾号{sharer.phone[-4:]}" in leaders  # this month's top sharer, with a bar
    assert 'class="bar"' in leaders
    assert 'value="release"' not in page  # a store manager sees it, HQ decides
    client_for(chain.hq_operator).post("/referrals/", {"action": "release", "id": row.pk})
    assert OrderCommission.objects.get(pk=row.pk).status == CommissionStatus.PENDING

    export = client_for(chain.hq_operator).get("/referrals/export.xlsx")
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("推客手机", "层级", "订单号")
    assert len(rows) == 3
    assert {r[6] for r in rows[1:]} == {3.99}  # commission in yuan, as numbers
    assert all("****" in str(r[0]) for r in rows[1:])  # HQ operators see masked phones
    bad = client_for(chain.hq_operator).get("/referrals/", {"month": "2026-13"})
    assert bad.status_code == 422


def test_hq_sets_the_referral_policy_from_the_console(chain: Chain) -> None:
    from shequn.referrals.policy import chain_policy, forget_policies

    hq = client_for(chain.hq_operator)
    page = hq.get("/referrals/").content.decode()
    assert 'id="policy"' in page
    assert 'name="attribution_days" value="7"' in page
    form = {
        "action": "settings",
        "binding_mode": "days",
        "binding_days": "15",
        "attribution_days": "3",
        "freeze_days": "10",
        "min_withdrawal": "20.00",
        "group_owner_percent": "2.5",
    }
    assert hq.post("/referrals/", form).status_code == 302
    forget_policies()
    policy = chain_policy(chain.hq.pk)
    assert (
        policy.binding_mode,
        policy.binding_days,
        policy.attribution_days,
        policy.freeze_days,
        policy.min_withdrawal_fen,
        policy.group_owner_bp,
    ) == ("days", 15, 3, 10, 2000, 250)
    assert 'name="group_owner_percent" value="2.5"' in hq.get("/referrals/").content.decode()
    for field, value in (("freeze_days", "99"), ("min_withdrawal", "abc"), ("binding_mode", "x")):
        refused = hq.post("/referrals/", {**form, field: value}, HTTP_REFERER="/referrals/")
        assert refused["Location"] == "/referrals/", field  # back to the form, with the reason
        shown = hq.get("/referrals/").content.decode()
        assert "天之间" in shown or "请填写" in shown or "未知的绑定方式" in shown, field
    forget_policies()
    assert chain_policy(chain.hq.pk).freeze_days == 10  # nothing changed
    assert 'id="policy"' not in client_for(chain.manager_a).get("/referrals/").content.decode()
    client_for(chain.manager_a).post("/referrals/", form, HTTP_REFERER="/referrals/")
    forget_policies()
    assert chain_policy(chain.hq.pk).freeze_days == 10  # a store manager changes nothing
