from datetime import timedelta

import pytest

from shequn.core import timeutil
from shequn.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from shequn.groups import actions
from shequn.groups.models import (
    CustomerGroup,
    GroupMembership,
    GroupTheme,
    Invitation,
    InvitationKind,
    JoinChannel,
    RecruitmentReward,
)
from shequn.groups.queries import access_invitation
from shequn.groups.rewards import recruitment_reward_fen
from shequn.members.models import Member
from tests.conftest import Chain, make_group, phone, staff_code, vouched


def join(invitation: Invitation, n: int) -> actions.JoinResult:
    return actions.join_by_invitation(
        code=actions.invitation_code(invitation),
        proof=vouched(actions.invitation_code(invitation), phone(n)),
    )


def test_reward_tiers_follow_the_seed() -> None:
    assert recruitment_reward_fen(1) == 50
    assert recruitment_reward_fen(100) == 50  # the first 100 members: ¥0.50 each
    assert recruitment_reward_fen(101) == 100  # beyond 100: ¥1.00 each
    with pytest.raises(ValueError):
        recruitment_reward_fen(0)


def test_cashier_code_puts_customer_in_group_and_rewards_cashier(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    result = join(staff_code(chain.cashier_a, group), 1)
    assert result.membership.group == group
    assert result.membership.join_channel == JoinChannel.STAFF_INVITE
    assert result.membership.invited_by_staff == chain.cashier_a.user
    assert result.reward is not None
    assert result.reward.amount_fen == 50
    assert result.reward.staff == chain.cashier_a.user
    group.refresh_from_db()
    assert group.member_count == 1


def test_reward_switches_to_one_yuan_after_100_members(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    for n in range(102):
        join(code, n)
    amounts = list(
        RecruitmentReward.objects.filter(group=group)
        .order_by("member_ordinal")
        .values_list("member_ordinal", "amount_fen")
    )
    assert amounts[99] == (100, 50)
    assert amounts[100] == (101, 100)
    assert sum(a for _, a in amounts) == 100 * 50 + 2 * 100
    assert access_invitation(chain.cashier_a, code.pk).uses == 102  # derived from the joins


def test_store_code_earns_nobody_a_reward(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    store_code = actions.create_invitation(
        acting=chain.manager_a, kind=InvitationKind.STORE, store=chain.store_a
    )
    result = join(store_code, 1)
    assert result.membership.group == group
    assert result.membership.join_channel == JoinChannel.STORE_QR
    assert result.reward is None


def test_duplicate_join_refused(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    join(code, 1)
    with pytest.raises(Conflict) as info:
        join(code, 1)
    assert info.value.code == "already_member"
    assert GroupMembership.objects.count() == 1
    assert RecruitmentReward.objects.count() == 1
    group.refresh_from_db()
    assert group.member_count == 1


def test_leave_and_rejoin_recorded_but_no_second_reward(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    first = join(staff_code(chain.cashier_a, group), 1)
    actions.leave_group_by_member_token(token=first.member_token, group_id=group.pk)
    group.refresh_from_db()
    assert group.member_count == 0
    # Rejoins through another cashier's code: recorded, but nobody is rewarded twice.
    other_cashier_code = actions.create_invitation(
        acting=chain.operator_a, kind=InvitationKind.STAFF, group=group
    )
    second = join(other_cashier_code, 1)
    assert second.reward is None
    stays = GroupMembership.objects.filter(group=group, member=first.member).order_by("id")
    assert [s.left_at is None for s in stays] == [False, True]
    assert RecruitmentReward.objects.filter(group=group).count() == 1


def test_full_group_names_a_sibling_with_room(chain: Chain) -> None:
    full = make_group(chain.manager_a, chain.store_a, name="宝妈一群", capacity=2)
    sibling = make_group(chain.manager_a, chain.store_a, name="宝妈二群", capacity=10)
    make_group(chain.manager_a, chain.store_a, name="VIP群", theme=GroupTheme.VIP)
    code = staff_code(chain.cashier_a, full)
    join(code, 1)
    join(code, 2)
    with pytest.raises(RuleViolation) as info:
        join(code, 3)
    assert info.value.code == "group_full"
    assert "宝妈二群" in info.value.message
    assert info.value.details["suggested_group"]["id"] == sibling.pk
    # Nothing of the refused join was written: no member, no membership, no reward.
    assert not Member.objects.filter(phone=phone(3)).exists()
    assert GroupMembership.objects.filter(group=full).count() == 2
    full.refresh_from_db()
    assert full.member_count == 2


def test_expired_revoked_and_tampered_codes_refused(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    text = actions.invitation_code(code)
    with pytest.raises(InvalidInput) as tampered:
        actions.join_by_invitation(
            code=text[:-1] + ("A" if text[-1] != "A" else "B"),
            proof=vouched(text[:-1] + ("A" if text[-1] != "A" else "B"), phone(1)),
        )
    assert tampered.value.code == "invalid_invitation"

    Invitation.objects.filter(pk=code.pk).update(expires_at=timeutil.now() - timedelta(seconds=1))
    with pytest.raises(RuleViolation) as expired:
        join(code, 2)
    assert expired.value.code == "invitation_expired"

    fresh = staff_code(chain.cashier_a, group)
    actions.revoke_invitation(acting=chain.cashier_a, invitation=fresh)
    with pytest.raises(RuleViolation) as revoked:
        join(fresh, 3)
    assert revoked.value.code == "invitation_revoked"
    assert Member.objects.count() == 0
    assert GroupMembership.objects.count() == 0


def test_cashier_limits(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    with pytest.raises(PermissionDenied):
        actions.create_invitation(acting=chain.cashier_a, kind=InvitationKind.GROUP, group=group)
    with pytest.raises(PermissionDenied):
        make_group(chain.cashier_a, chain.store_a)
    other_store_group = make_group(chain.manager_b, chain.store_b)
    with pytest.raises(NotFound):
        staff_code(chain.cashier_a, other_store_group)


def test_capacity_cannot_drop_below_head_count(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    for n in range(3):
        join(code, n)
    with pytest.raises(RuleViolation):
        actions.update_group(acting=chain.manager_a, group=group, capacity=2)
    with pytest.raises(InvalidInput):
        actions.update_group(acting=chain.manager_a, group=group, capacity=501)
    assert CustomerGroup.objects.get(pk=group.pk).capacity == 500


def test_closed_group_refuses_joins(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = staff_code(chain.cashier_a, group)
    actions.update_group(acting=chain.manager_a, group=group, status="closed")
    with pytest.raises(RuleViolation) as info:
        join(code, 1)
    assert info.value.code == "group_closed"


def test_staff_add_and_remove(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    added = actions.add_member_by_staff(
        acting=chain.operator_a, group=group, phone="13900000000", name="李娜", role="team_leader"
    )
    assert added.membership.role == "team_leader"
    assert added.reward is None  # only a staff code earns the recruitment reward
    actions.remove_member(acting=chain.operator_a, membership=added.membership, reason="广告")
    with pytest.raises(Conflict):
        actions.remove_member(acting=chain.operator_a, membership=added.membership)
    group.refresh_from_db()
    assert group.member_count == 0


def test_member_referral_records_the_referrer(chain: Chain) -> None:
    group = make_group(chain.manager_a, chain.store_a)
    code = actions.invitation_code(
        actions.create_invitation(acting=chain.manager_a, kind=InvitationKind.GROUP, group=group)
    )
    sharer = actions.join_by_invitation(code=code, proof=vouched(code, phone(1)))
    friend = actions.join_by_invitation(
        code=code, proof=vouched(code, phone(2)), referrer_token=sharer.member_token
    )
    assert friend.membership.join_channel == JoinChannel.MEMBER_REFERRAL
    assert friend.membership.invited_by_member == sharer.member
    with pytest.raises(InvalidInput) as info:
        actions.join_by_invitation(
            code=code, proof=vouched(code, phone(3)), referrer_token="forged.token"
        )
    assert info.value.code == "invalid_member_token"
    assert not Member.objects.filter(phone=phone(3)).exists()


def test_store_code_fills_the_fullest_group_first(chain: Chain) -> None:
    small = make_group(chain.manager_a, chain.store_a, name="一群", capacity=2)
    big = make_group(chain.manager_a, chain.store_a, name="二群", capacity=10)
    actions.add_member_by_staff(acting=chain.operator_a, group=small, phone=phone(100))
    store_code = actions.create_invitation(
        acting=chain.manager_a, kind=InvitationKind.STORE, store=chain.store_a
    )
    assert join(store_code, 1).membership.group == small  # fullest with room first
    assert join(store_code, 2).membership.group == big  # then the next one


def test_group_closed_after_the_check_is_reported_as_closed_not_full(chain: Chain) -> None:
    from shequn.groups.actions import join_group
    from shequn.groups.models import CustomerGroup, GroupStatus
    from shequn.members.actions import find_or_register_member

    group = make_group(chain.manager_a, chain.store_a)
    stale = CustomerGroup.objects.get(pk=group.pk)  # read while still active
    CustomerGroup.objects.filter(pk=group.pk).update(status=GroupStatus.CLOSED)
    member = find_or_register_member(store=chain.store_a, phone=phone(77)).member
    with pytest.raises(RuleViolation) as info:
        join_group(group=stale, member=member, channel="store_qr")
    assert info.value.code == "group_closed"
    assert not group.memberships.exists()
