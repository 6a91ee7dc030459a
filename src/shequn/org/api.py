"""Org API: who am I, tokens, org tree, staff, audit log. Parse, authorize, render — nothing else."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from shequn.core.models import AuditEvent
from shequn.core.pagination import Page

from . import actions
from .models import NodeKind, OrgNode, Staff
from .queries import visible_nodes, visible_staff
from .roles import ROLE_PERMS, Perm, Role
from .scoping import access_node, acting_staff, get_scoped, require_perm, scoped, within_node

auth_router = Router(tags=["认证"])
router = Router(tags=["组织"])
audit_router = Router(tags=["审计"])


def staff_of(request: HttpRequest) -> Staff:
    return acting_staff(request.auth)  # type: ignore[attr-defined]


# --- schemas -------------------------------------------------------------------------------
class NodeOut(Schema):
    id: int
    name: str
    kind: str
    code: str
    parent_id: int | None
    depth: int
    path: str
    address: str
    is_active: bool


class NodeIn(Schema):
    parent_id: int
    name: str = Field(..., min_length=1, max_length=100)
    kind: NodeKind
    code: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")
    address: str = Field("", max_length=200)


class StaffOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    node_id: int
    node_name: str
    is_active: bool

    @staticmethod
    def resolve_username(obj: Staff) -> str:
        return obj.user.get_username()

    @staticmethod
    def resolve_role_label(obj: Staff) -> str:
        return obj.get_role_display()

    @staticmethod
    def resolve_node_name(obj: Staff) -> str:
        return obj.node.name

    @staticmethod
    def resolve_is_active(obj: Staff) -> bool:
        return obj.user.is_active


class StaffIn(Schema):
    node_id: int
    role: Role
    username: str = Field(..., pattern=r"^[A-Za-z0-9_.@-]{3,150}$")
    password: str = Field(..., min_length=8, max_length=128)
    display_name: str = Field(..., min_length=1, max_length=50)
    phone: str = Field("", max_length=32)


class MeOut(Schema):
    staff: StaffOut
    permissions: list[str]


class TokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    token: str = Field(..., description="只显示这一次, 请妥善保存")


class AuditOut(Schema):
    id: int
    occurred_at: datetime
    actor_label: str
    action: str
    target_type: str
    target_id: str
    ip: str | None
    channel: str
    details: dict[str, object]


# --- auth ----------------------------------------------------------------------------------
@auth_router.get("/me", response=MeOut, summary="当前员工与权限")
def me(request: HttpRequest) -> dict[str, object]:
    staff = staff_of(request)
    return {"staff": staff, "permissions": sorted(ROLE_PERMS.get(staff.role, ()))}


@auth_router.post("/tokens", response={201: TokenOut}, summary="为自己发放 API 令牌")
def create_token(request: HttpRequest, payload: TokenIn) -> Status[TokenOut]:
    staff = staff_of(request)
    issued = actions.issue_api_token(user=staff.user, name=payload.name)
    return Status(201, TokenOut(id=issued.token.pk, name=issued.token.name, token=issued.secret))


# --- org tree ------------------------------------------------------------------------------
@router.get("/nodes", response=list[NodeOut], summary="组织节点(本部门及下级)")
@paginate(Page)
def list_nodes(request: HttpRequest, kind: NodeKind | None = None) -> object:
    qs = visible_nodes(staff_of(request))
    return qs.filter(kind=kind) if kind else qs


@router.get("/nodes/{node_id}", response=NodeOut, summary="组织节点详情")
def get_node(request: HttpRequest, node_id: int) -> OrgNode:
    return access_node(staff_of(request), node_id)


@router.post("/nodes", response={201: NodeOut}, summary="新建大区/片区/门店")
def create_node(request: HttpRequest, payload: NodeIn) -> Status[OrgNode]:
    staff = staff_of(request)
    parent = access_node(staff, payload.parent_id)
    node = actions.create_node(
        acting=staff,
        parent=parent,
        name=payload.name,
        kind=payload.kind,
        code=payload.code,
        address=payload.address,
    )
    return Status(201, node)


# --- staff ---------------------------------------------------------------------------------
@router.get("/staff", response=list[StaffOut], summary="员工(本部门及下级)")
@paginate(Page)
def list_staff(
    request: HttpRequest, node_id: int | None = None, role: Role | None = None
) -> object:
    staff = staff_of(request)
    qs = visible_staff(staff)
    if node_id is not None:
        qs = within_node(qs, staff, node_id, via="node")
    if role is not None:
        qs = qs.filter(role=role)
    return qs


@router.get("/staff/{staff_id}", response=StaffOut, summary="员工详情")
def get_staff(request: HttpRequest, staff_id: int) -> Staff:
    staff = staff_of(request)
    return get_scoped(visible_staff(staff), staff, staff_id)


@router.post("/staff", response={201: StaffOut}, summary="新建员工账号")
def create_staff(request: HttpRequest, payload: StaffIn) -> Status[Staff]:
    staff = staff_of(request)
    node = access_node(staff, payload.node_id)
    created = actions.create_staff(
        acting=staff,
        node=node,
        role=payload.role,
        username=payload.username,
        password=payload.password,
        display_name=payload.display_name,
        phone=payload.phone,
    )
    return Status(201, created)


@router.post("/staff/{staff_id}/deactivate", response=StaffOut, summary="停用员工账号")
def deactivate_staff(request: HttpRequest, staff_id: int) -> Staff:
    staff = staff_of(request)
    target = get_scoped(visible_staff(staff), staff, staff_id)
    return actions.set_staff_active(acting=staff, staff=target, active=False)


@router.post("/staff/{staff_id}/activate", response=StaffOut, summary="启用员工账号")
def activate_staff(request: HttpRequest, staff_id: int) -> Staff:
    staff = staff_of(request)
    target = get_scoped(visible_staff(staff), staff, staff_id)
    return actions.set_staff_active(acting=staff, staff=target, active=True)


# --- audit ---------------------------------------------------------------------------------
@audit_router.get("/events", response=list[AuditOut], summary="审计日志(本部门及下级)")
@paginate(Page)
def list_audit(request: HttpRequest, action: str | None = None) -> object:
    staff = staff_of(request)
    require_perm(staff, Perm.VIEW_AUDIT)
    qs = scoped(AuditEvent.objects.all(), staff)
    return qs.filter(action=action) if action else qs
