"""A world with data in store A and in store B: the fixture for isolation tests."""

from __future__ import annotations

from dataclasses import dataclass

from shequn.groups import actions as group_actions
from shequn.groups.models import CustomerGroup, GroupMembership, Invitation, RecruitmentReward
from shequn.members.models import Member
from tests.conftest import Chain, build_chain, make_group, staff_code

# Strings that exist only in store B's data: none may appear in what store A's staff get back.
B_MARKERS = ("B店专属群", "乙会员", "13900009999", "o-openid-b")


@dataclass
class World:
    chain: Chain
    group_a: CustomerGroup
    group_b: CustomerGroup
    member_a: Member
    member_b: Member
    membership_a: GroupMembership
    membership_b: GroupMembership
    invitation_a: Invitation
    invitation_b: Invitation
    reward_b: RecruitmentReward
    member_b_token: str


def build_world() -> World:
    chain = build_chain()
    group_a = make_group(chain.manager_a, chain.store_a, name="A店宝妈群")
    group_b = make_group(chain.manager_b, chain.store_b, name="B店专属群")
    invitation_a = staff_code(chain.cashier_a, group_a)
    invitation_b = staff_code(chain.cashier_b, group_b)
    joined_a = group_actions.join_by_invitation(
        code=group_actions.invitation_code(invitation_a), phone="13900001111", name="甲会员"
    )
    joined_b = group_actions.join_by_invitation(
        code=group_actions.invitation_code(invitation_b),
        phone="13900009999",
        name="乙会员",
        identities={"wechat_openid": "o-openid-b"},
    )
    assert joined_b.reward is not None
    return World(
        chain=chain,
        group_a=group_a,
        group_b=group_b,
        member_a=joined_a.member,
        member_b=joined_b.member,
        membership_a=joined_a.membership,
        membership_b=joined_b.membership,
        invitation_a=invitation_a,
        invitation_b=invitation_b,
        reward_b=joined_b.reward,
        member_b_token=joined_b.member_token,
    )
