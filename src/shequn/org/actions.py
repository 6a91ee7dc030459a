"""Business actions on the org tree and staff. One function per action; each audits itself."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from shequn.core.phones import normalize_phone

from .models import ApiToken, NodeKind, OrgNode, Staff
from .roles import GRANTABLE_ROLES, Perm, Role
from .scoping import require_perm

# Which kinds may hang below which: stores are leaves; HQ is only a root.
ALLOWED_CHILDREN: dict[str, frozenset[str]] = {
    NodeKind.HQ: frozenset({NodeKind.REGION, NodeKind.AREA, NodeKind.STORE}),
    NodeKind.REGION: frozenset({NodeKind.REGION, NodeKind.AREA, NodeKind.STORE}),
    NodeKind.AREA: frozenset({NodeKind.AREA, NodeKind.STORE}),
    NodeKind.STORE: frozenset(),
}


def create_chain(*, name: str, code: str) -> OrgNode:
    """A new HQ root. Only from the CLI or demo loader: there is nobody above HQ to ask."""
    with transaction.atomic():
        root = _insert_node(name=name, code=code, kind=NodeKind.HQ, parent=None)
        record_audit(None, "org.chain_created", target=root, scope_path=root.path)
    return root


def create_node(
    *, acting: Staff, parent: OrgNode, name: str, kind: str, code: str, address: str = ""
) -> OrgNode:
    require_perm(acting, Perm.MANAGE_ORG)
    if not parent.is_within(acting.node):
        raise PermissionDenied("只能在本部门及下级部门下创建")
    if kind not in ALLOWED_CHILDREN.get(parent.kind, frozenset()):
        raise RuleViolation(
            f"{parent.get_kind_display()}下不能创建{NodeKind(kind).label}",
            code="invalid_node_kind",
        )
    with transaction.atomic():
        node = _insert_node(name=name, code=code, kind=kind, parent=parent, address=address)
        record_audit(acting.user, "org.node_created", target=node, scope_path=node.path)
    return node


def _insert_node(
    *, name: str, code: str, kind: str, parent: OrgNode | None, address: str = ""
) -> OrgNode:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("名称不能为空, 且不超过100字")
    try:
        with transaction.atomic():
            node = OrgNode.objects.create(
                name=name, code=code, kind=kind, parent=parent, address=address, path="/"
            )
    except IntegrityError:
        raise Conflict(f"编码 {code} 已被使用", code="duplicate_code") from None
    # The path needs the new id, so it is written right after the insert, in the same transaction.
    node.path = f"{parent.path if parent else '/'}{node.pk}/"
    node.depth = 0 if parent is None else parent.depth + 1
    node.save(update_fields=["path", "depth"])
    return node


def create_staff(
    *,
    acting: Staff | None,
    node: OrgNode,
    role: str,
    username: str,
    password: str,
    display_name: str,
    phone: str = "",
) -> Staff:
    """A staff account at ``node``. ``acting=None`` only for the CLI/demo bootstrap."""
    if role not in Role.values:
        raise InvalidInput(f"未知角色: {role}")
    if acting is not None:
        require_perm(acting, Perm.MANAGE_STAFF)
        if not node.is_within(acting.node):
            raise PermissionDenied("只能为本部门及下级部门创建员工")
        if role not in GRANTABLE_ROLES.get(acting.role, frozenset()):
            raise PermissionDenied(f"无权授予角色: {Role(role).label}")
    if role in {Role.HQ_ADMIN, Role.HQ_OPERATOR} and node.kind != NodeKind.HQ:
        raise RuleViolation("总部角色只能挂在总部节点", code="role_node_mismatch")
    if role in {Role.STORE_MANAGER, Role.CASHIER, Role.GROUP_OPERATOR} and (
        node.kind != NodeKind.STORE
    ):
        raise RuleViolation("门店角色只能挂在门店节点", code="role_node_mismatch")
    display_name = display_name.strip()
    if not display_name:
        raise InvalidInput("姓名不能为空")
    normalized_phone = normalize_phone(phone) if phone else ""
    user_model = get_user_model()
    try:
        validate_password(password)
    except ValidationError as exc:
        raise InvalidInput(
            "密码不符合要求: " + " ".join(exc.messages), code="weak_password"
        ) from None
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = user_model.objects.create_user(username=username, password=password)
        except IntegrityError:
            raise Conflict(f"用户名 {username} 已存在", code="duplicate_username") from None
        staff = Staff.objects.create(
            user=user, node=node, role=role, display_name=display_name, phone=normalized_phone
        )
        record_audit(
            acting.user if acting else None,
            "org.staff_created",
            target=staff,
            scope_path=node.path,
            details={"role": role, "username": username},
        )
    return staff


def set_staff_active(*, acting: Staff, staff: Staff, active: bool) -> Staff:
    require_perm(acting, Perm.MANAGE_STAFF)
    if not staff.node.is_within(acting.node) or staff.pk == acting.pk:
        raise PermissionDenied("不能修改该员工")
    with transaction.atomic():
        user = staff.user
        user.is_active = active
        user.save(update_fields=["is_active"])
        record_audit(
            acting.user,
            "org.staff_activated" if active else "org.staff_deactivated",
            target=staff,
            scope_path=staff.node.path,
        )
    return staff


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is stored


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_token(*, user: User, name: str) -> IssuedToken:
    secret = "sq_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], key_hash=hash_token(secret), prefix=secret[:10]
        )
        record_audit(user, "org.api_token_issued", target=token, details={"name": name})
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(*, user: User, token: ApiToken) -> None:
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timeutil.now()
        )
        record_audit(user, "org.api_token_revoked", target=token)
