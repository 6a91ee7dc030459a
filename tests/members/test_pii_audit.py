"""Who saw whose full phone number, and who exported personal data, is in the audit log.

Every page or API answer that shows a member's phone unmasked (roles with ``view_pii``: store
managers, HQ admins) writes one ``members.phones_viewed`` event per request naming the staff
member, their scope, the view and the members; a masked answer writes none. The orders export
and the sharers' commission statement write one export event each, naming the filters, the rows
and whose phones went out unmasked."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from shequn.core.models import AuditEvent
from shequn.members.queries import phone_for
from shequn.referrals.actions import set_commission_rule
from tests.conftest import Chain, client_for, make_sku
from tests.referrals.test_commission_lifecycle import approved_sharer, member
from tests.referrals.test_fraud_holds import paid_through
from tests.world import World

pytestmark = pytest.mark.django_db

PHONE_B = "13900009999"  # member B's, as a store B manager may read it


def viewed(**match: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="members.phones_viewed", **match).order_by("id"))


PAGES = [
    "/members/",
    "/groups/{group_b}/",
    "/orders/",
    "/orders/{order_b}/",
    "/api/members",
    "/api/members/{member_b}",
    "/api/groups/{group_b}/members",
    "/api/orders",
    "/api/orders/{order_b}",
    "/api/promotions/teams/{team_b}",
    "/api/referrals/sharers",
    "/api/demand/messages",
]


@pytest.mark.parametrize("page", PAGES)
def test_each_view_of_full_phones_writes_one_audit_event(world: World, page: str) -> None:
    manager = world.chain.manager_b
    url = page.format(
        group_b=world.group_b.pk,
        order_b=world.order_b.pk,
        member_b=world.member_b.pk,
        team_b=world.team_b.pk,
    )
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client_for(manager).get(url)
    assert response.status_code == 200
    assert PHONE_B in response.content.decode()  # a store manager sees the full number
    (event,) = AuditEvent.objects.filter(pk__gt=last)
    assert event.action == "members.phones_viewed"
    assert (event.actor, event.scope_path) == (manager.user, manager.node.path)
    assert str(world.member_b.pk) in event.details["ids"]
    assert event.details["count"] == len(event.details["ids"])
    assert event.details["path"] == url
    assert event.details["view"]  # the view's name, e.g. console:members


def test_masked_phones_write_nothing_and_a_page_is_one_event(chain: Chain) -> None:
    people = [member(chain, n) for n in range(1, 4)]
    assert "****" in client_for(chain.operator_a).get("/members/").content.decode()
    assert client_for(chain.operator_a).get("/api/members").status_code == 200
    assert viewed() == []  # a group operator sees masked phones: nothing to record
    client_for(chain.manager_a).get("/members/")
    (event,) = viewed()
    assert sorted(event.details["ids"]) == sorted(str(p.pk) for p in people)
    assert (event.details["count"], event.target_id) == (3, "")  # three members: one event
    assert (event.details["view"], event.channel) == ("console:members", "console")
    client_for(chain.manager_a).get("/api/members", {"store_id": chain.store_a.pk})
    api = viewed()[-1]
    assert api.details["query"] == f"store_id={chain.store_a.pk}"  # the filters
    assert (api.details["method"], api.channel) == ("GET", "api")


def test_a_full_phone_read_outside_a_request_is_recorded_at_once(chain: Chain) -> None:
    person = member(chain, 1)
    assert phone_for(chain.operator_a, person) == "138****0001"
    assert viewed() == []
    assert phone_for(chain.manager_a, person) == "13800000001"
    (event,) = viewed()
    assert (event.actor, event.target_id, event.details["ids"]) == (
        chain.manager_a.user,
        str(person.pk),
        [str(person.pk)],
    )


def test_the_orders_export_is_audited_once_with_its_scope(world: World) -> None:
    masked = client_for(world.chain.operator_a).get("/orders/export.xlsx")
    assert masked.status_code == 200
    full = client_for(world.chain.manager_b).get(
        "/orders/export.xlsx", {"status": "pending_payment"}
    )
    assert full.status_code == 200
    sheet = load_workbook(io.BytesIO(full.content)).active
    assert sheet is not None
    assert PHONE_B in {str(row[2]) for row in sheet.iter_rows(min_row=2, values_only=True)}
    first, second = AuditEvent.objects.filter(action="orders.exported").order_by("id")
    assert (first.actor, first.scope_path) == (
        world.chain.operator_a.user,
        world.chain.operator_a.node.path,
    )
    assert first.details == {
        "format": "xlsx",
        "filters": {"status": ""},
        "rows": 1,
        "phones": "masked",
        "unmasked_members": [],
    }
    assert (second.actor, second.scope_path) == (
        world.chain.manager_b.user,
        world.chain.manager_b.node.path,
    )
    assert second.details["filters"] == {"status": "pending_payment"}
    assert second.details["phones"] == "unmasked"
    assert str(world.member_b.pk) in second.details["unmasked_members"]
    assert second.details["rows"] == len(second.details["unmasked_members"]) > 0
    assert viewed() == []  # the export's own event names the phones: not a second one


def test_the_commission_statement_export_is_audited(chain: Chain) -> None:
    sku = make_sku(chain, price_fen=3990, stock={chain.store_a: 20})
    set_commission_rule(acting=chain.hq_operator, rates_bp=[1000])
    sharer = approved_sharer(chain, 1)
    paid_through(chain, sku, sharer, member(chain, 10), "a")
    response = client_for(chain.admin).get("/referrals/export.xlsx", {"month": ""})
    assert response.status_code == 200
    (event,) = AuditEvent.objects.filter(action="referrals.statement_exported")
    assert (event.actor, event.scope_path) == (chain.admin.user, chain.admin.node.path)
    assert event.details["rows"] == 1
    assert event.details["phones"] == "unmasked"  # an HQ admin may read full phones
    assert event.details["unmasked_members"] == [str(sharer.pk)]
    assert event.details["month"]
    assert viewed() == []
