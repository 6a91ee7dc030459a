import pytest

from shequn.core.errors import NotFound, PermissionDenied, RuleViolation
from shequn.org import actions
from shequn.org.models import NodeKind, OrgNode
from shequn.org.queries import visible_nodes, visible_staff, visible_stores
from shequn.org.roles import Role
from shequn.org.scoping import access_node, scoped
from tests.conftest import Chain


def test_hq_sees_whole_tree_region_its_subtree_store_itself(chain: Chain) -> None:
    assert set(visible_stores(chain.admin)) == {chain.store_a, chain.store_a2, chain.store_b}
    assert set(visible_stores(chain.region_manager_a)) == {chain.store_a, chain.store_a2}
    assert set(visible_nodes(chain.manager_a)) == {chain.store_a}


def test_sibling_node_is_not_found_not_forbidden(chain: Chain) -> None:
    with pytest.raises(NotFound):
        access_node(chain.manager_a, chain.store_b.pk)
    with pytest.raises(NotFound):
        access_node(chain.region_manager_a, chain.region_b.pk)


def test_any_depth(chain: Chain) -> None:
    area = actions.create_node(
        acting=chain.admin,
        parent=chain.region_a,
        name="岳麓片区",
        kind=NodeKind.AREA,
        code="area-x",
    )
    deep = actions.create_node(
        acting=chain.admin, parent=area, name="深层门店", kind=NodeKind.STORE, code="deep-x"
    )
    assert deep.depth == 3
    assert deep.path == f"{area.path}{deep.pk}/"
    assert deep in visible_stores(chain.region_manager_a)
    assert deep not in visible_stores(chain.manager_a)


def test_scoped_refuses_unscoped_models(chain: Chain) -> None:
    from django.contrib.auth import get_user_model

    with pytest.raises(TypeError):
        scoped(get_user_model().objects.all(), chain.admin)


def test_store_manager_sees_own_store_staff_only(chain: Chain) -> None:
    seen = set(visible_staff(chain.manager_a))
    assert chain.cashier_a in seen
    assert chain.operator_a in seen
    assert chain.cashier_b not in seen
    assert chain.manager_b not in seen
    assert set(visible_staff(chain.cashier_a)) == {chain.cashier_a}


def test_store_manager_may_create_cashier_not_admin(chain: Chain) -> None:
    cashier = actions.create_staff(
        acting=chain.manager_a,
        node=chain.store_a,
        role=Role.CASHIER,
        username="new_cashier",
        password="Strong-pass-2026",
        display_name="新收银员",
        phone="13912345678",
    )
    assert cashier.phone == "+8613912345678"
    with pytest.raises(PermissionDenied):
        actions.create_staff(
            acting=chain.manager_a,
            node=chain.store_a,
            role=Role.STORE_MANAGER,
            username="x1",
            password="Strong-pass-2026",
            display_name="x",
        )
    with pytest.raises(PermissionDenied):
        actions.create_staff(
            acting=chain.manager_a,
            node=chain.store_b,
            role=Role.CASHIER,
            username="x2",
            password="Strong-pass-2026",
            display_name="x",
        )


def test_store_roles_only_on_stores(chain: Chain) -> None:
    with pytest.raises(RuleViolation):
        actions.create_staff(
            acting=chain.admin,
            node=chain.region_a,
            role=Role.CASHIER,
            username="x3",
            password="Strong-pass-2026",
            display_name="x",
        )


def test_store_cannot_have_children(chain: Chain) -> None:
    with pytest.raises(RuleViolation):
        actions.create_node(
            acting=chain.admin, parent=chain.store_a, name="x", kind=NodeKind.STORE, code="x-9"
        )
    assert not OrgNode.objects.filter(code="x-9").exists()
