import pytest

from shequn.core.errors import Conflict, InvalidInput
from shequn.core.models import AuditEvent
from shequn.members.actions import find_or_register_member, set_consent
from shequn.members.models import Member
from shequn.members.queries import phone_for, visible_members
from tests.conftest import Chain


def test_phone_unique_per_chain_find_or_register(chain: Chain) -> None:
    first = find_or_register_member(store=chain.store_a, phone="13800000001", name="王芳")
    again = find_or_register_member(store=chain.store_b, phone="+86 138 0000 0001", name="别名")
    assert first.created
    assert not again.created
    assert again.member.pk == first.member.pk
    assert again.member.home_store == chain.store_a  # the first store keeps the member
    assert Member.objects.count() == 1


def test_identities_unique_per_channel(chain: Chain) -> None:
    a = find_or_register_member(
        store=chain.store_a, phone="13800000001", identities={"wechat_openid": "o-123"}
    ).member
    assert a.identities.get().value == "o-123"
    with pytest.raises(Conflict):
        find_or_register_member(
            store=chain.store_a, phone="13800000002", identities={"wechat_openid": "o-123"}
        )
    assert Member.objects.count() == 1  # the refused registration left nothing behind


def test_unknown_identity_channel_refused(chain: Chain) -> None:
    with pytest.raises(InvalidInput):
        find_or_register_member(store=chain.store_a, phone="13800000001", identities={"qq": "1"})
    assert Member.objects.count() == 0


def test_consent_grant_and_withdraw_are_timestamped_and_audited(chain: Chain) -> None:
    member = find_or_register_member(store=chain.store_a, phone="13800000001").member
    set_consent(member=member, purpose="marketing", granted=True)
    granted_at = member.consent_marketing_at
    assert member.consent_marketing
    assert granted_at is not None
    set_consent(member=member, purpose="marketing", granted=False)
    member.refresh_from_db()
    assert not member.consent_marketing
    assert member.consent_marketing_at >= granted_at
    actions = list(
        AuditEvent.objects.filter(target_id=str(member.pk), action__startswith="members.consent")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["members.consent_granted", "members.consent_withdrawn"]


def test_masking_depends_on_role(chain: Chain) -> None:
    member = find_or_register_member(store=chain.store_a, phone="13812341234").member
    assert phone_for(chain.manager_a, member) == "13812341234"
    assert phone_for(chain.operator_a, member) == "138****1234"
    assert phone_for(chain.hq_operator, member) == "138****1234"


def test_members_scoped_by_home_store(chain: Chain) -> None:
    a = find_or_register_member(store=chain.store_a, phone="13800000001").member
    b = find_or_register_member(store=chain.store_b, phone="13800000002").member
    assert list(visible_members(chain.manager_a)) == [a]
    assert list(visible_members(chain.manager_b)) == [b]
    assert set(visible_members(chain.admin)) == {a, b}
    assert list(visible_members(chain.supplier)) == []
    assert list(visible_members(chain.cashier_a)) == []
