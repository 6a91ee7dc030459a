"""Org tree and staff.

The tree uses a materialized path (``/1/4/17/``) so "this node and everything below it" is one
indexed prefix match, at any depth, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .roles import Role


class NodeKind(models.TextChoices):
    HQ = "hq", "总部"
    REGION = "region", "大区"
    AREA = "area", "片区"
    STORE = "store", "门店"


class OrgNode(models.Model):
    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=16, choices=NodeKind.choices)
    code = models.SlugField("编码", max_length=40, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=255, db_index=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)
    timezone = models.CharField("时区", max_length=64, default="Asia/Shanghai")
    address = models.CharField("地址", max_length=200, blank=True)
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        verbose_name = "组织节点"
        verbose_name_plural = "组织节点"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True, kind="hq") | models.Q(parent__isnull=False),
                name="orgnode_root_is_hq",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def chain_id(self) -> int:
        """The root (HQ) id: the first element of the path."""
        return int(self.path.strip("/").split("/")[0])

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(path__startswith=path)

    def is_within(self, other: OrgNode) -> bool:
        """True when self is ``other`` or lies below it."""
        return self.path.startswith(other.path)


class Staff(models.Model):
    """A staff account: one Django user, bound to one org node with one role."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    node = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField("角色", max_length=32, choices=Role.choices)
    display_name = models.CharField("姓名", max_length=50)
    phone = models.CharField("手机号", max_length=20, blank=True)
    # Their WeCom account (企业微信 userid): how chat records and callbacks name them.
    wecom_userid = models.CharField(
        "企业微信账号", max_length=64, null=True, blank=True, unique=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["node__path", "id"]
        verbose_name = "员工"
        verbose_name_plural = "员工"

    def __str__(self) -> str:
        return f"{self.display_name}({self.get_role_display()})"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(node__path__startswith=path)


class ApiToken(models.Model):
    """A bearer token for API clients. Only a SHA-256 of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
