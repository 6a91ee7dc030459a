"""``row_by_pk`` returns what the ORM returns for the same row, on either database."""

from __future__ import annotations

import pytest

from shequn.core.rows import row_by_pk
from shequn.members.models import Member
from shequn.org.models import OrgNode
from tests.conftest import Chain

pytestmark = pytest.mark.django_db


def _fields(instance: object) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}  # type: ignore[attr-defined]


def test_the_same_instance_as_the_orm(chain: Chain) -> None:
    member = Member.objects.create(
        chain=chain.hq, phone="+8613800000001", name="王阿姨", home_store=chain.store_a
    )
    for model, pk in ((Member, member.pk), (OrgNode, chain.store_a.pk), (OrgNode, chain.hq.pk)):
        fast, orm = row_by_pk(model, pk), model.objects.get(pk=pk)
        assert fast is not None
        assert _fields(fast) == _fields(orm)
        assert fast._state.adding is False
        assert fast._state.db == "default"
    fast_member = row_by_pk(Member, member.pk)
    assert fast_member is not None
    assert fast_member.created_at.tzinfo is not None


@pytest.mark.parametrize("pk", [0, -1, 10**9, 2**63, -(2**63) - 1, 10**30])
def test_absent_or_impossible_keys_are_none(pk: int) -> None:
    assert row_by_pk(OrgNode, pk) is None
