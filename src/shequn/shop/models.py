"""A product card pushed into a group: the group's feed, and the source an order remembers."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from shequn.catalog.models import Product
from shequn.groups.models import CustomerGroup
from shequn.members.models import Member


class GroupPost(models.Model):
    """One product card in one group. Its link carries the group, the sharer (the group's
    owner when a member holds that role) and the content id ``post-<id>``, so an order placed
    from it records where it came from."""

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="posts")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    headline = models.CharField("推荐语", max_length=100, blank=True)
    sharer = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    posted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-posted_at", "-id"]
        verbose_name = "商品卡片"
        verbose_name_plural = "商品卡片"
        indexes = [models.Index(fields=["group", "-posted_at"], name="post_feed_idx")]

    def __str__(self) -> str:
        return f"{self.product} → {self.group}"

    @property
    def content_ref(self) -> str:
        return f"post-{self.pk}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(group__store__path__startswith=path)
