"""The audit log: every action writes one; the database refuses edits even in raw SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from shequn.core.models import AuditEvent
from shequn.groups import actions as group_actions
from tests.conftest import Chain, client_for, make_group


def test_actions_write_who_what_where(chain: Chain) -> None:
    client = client_for(chain.manager_a)
    response = client.post(
        "/api/groups",
        data={"store_id": chain.store_a.pk, "name": "审计群", "theme": "vip"},
        content_type="application/json",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="groups.created")
    assert event.actor == chain.manager_a.user
    assert event.actor_label == chain.manager_a.user.username
    assert event.target_type == "groups.customergroup"
    assert event.target_id == str(response.json()["id"])
    assert event.scope_path == chain.store_a.path
    assert event.ip == "10.1.2.3"
    assert event.channel == "api"
    assert event.occurred_at is not None


def test_failed_action_leaves_no_audit_event(chain: Chain) -> None:
    before = AuditEvent.objects.count()
    with pytest.raises(Exception):  # noqa: B017,PT011 - the domain error itself is tested elsewhere
        group_actions.create_group(
            acting=chain.cashier_a, store=chain.store_a, name="x", theme="vip"
        )
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "sql", ["UPDATE core_auditevent SET action = 'forged'", "DELETE FROM core_auditevent"]
)
def test_raw_sql_cannot_edit_the_audit_log(chain: Chain, sql: str) -> None:
    make_group(chain.manager_a, chain.store_a)
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.count() == count
    assert not AuditEvent.objects.filter(action="forged").exists()


def test_orm_save_of_existing_event_refused(chain: Chain) -> None:
    event = AuditEvent.objects.first()
    assert event is not None
    event.action = "forged"
    with pytest.raises(RuntimeError):
        event.save()


def test_audit_api_is_scoped(chain: Chain) -> None:
    make_group(chain.manager_a, chain.store_a, name="甲群")
    make_group(chain.manager_b, chain.store_b, name="乙群")
    events = (
        client_for(chain.manager_a).get("/api/audit/events", {"action": "groups.created"}).json()
    )
    assert [e["details"]["name"] for e in events["items"]] == ["甲群"]
    assert client_for(chain.operator_a).get("/api/audit/events").status_code == 403
