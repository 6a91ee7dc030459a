"""Member profile, channel identities (WeChat, WeCom, member card) and consent flags."""

from __future__ import annotations

from django.db import models

from shequn.org.models import OrgNode


class Member(models.Model):
    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    phone = models.CharField("手机号", max_length=20)  # E.164, see core.phones
    name = models.CharField("姓名", max_length=50, blank=True)
    home_store = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="home_members", verbose_name="归属门店"
    )
    # Consent (PIPL art. 14-15): each purpose has a flag and the time it last changed, so a
    # withdrawal is as easy and as visible as the grant. History lives in the audit log.
    consent_marketing = models.BooleanField("同意营销推送", default=False)
    consent_marketing_at = models.DateTimeField(null=True, blank=True)
    consent_chat_analysis = models.BooleanField("同意群聊分析", default=False)
    consent_chat_analysis_at = models.DateTimeField(null=True, blank=True)
    consent_personalization = models.BooleanField("接受个性化推荐", default=False)
    consent_personalization_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "会员"
        verbose_name_plural = "会员"
        constraints = [
            models.UniqueConstraint(fields=["chain", "phone"], name="member_phone_unique_per_chain")
        ]

    def __str__(self) -> str:
        return self.name or f"会员#{self.pk}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        """A member belongs to the home store's subtree and to every store whose group they are in."""
        # Through the reverse relation groups declares (``memberships``), so members imports
        # nothing above it; the name is the one soft dependency left (ADR 0013).
        in_scoped_group = Member.objects.filter(
            pk=models.OuterRef("pk"),
            memberships__left_at__isnull=True,
            memberships__group__store__path__startswith=path,
        )
        return models.Q(home_store__path__startswith=path) | models.Q(
            models.Exists(in_scoped_group)
        )


class IdentityChannel(models.TextChoices):
    WECHAT_OPENID = "wechat_openid", "微信 openid"
    WECHAT_UNIONID = "wechat_unionid", "微信 unionid"
    WECOM_EXTERNAL_USERID = "wecom_external_userid", "企业微信 external_userid"
    MEMBER_CARD = "member_card", "会员卡号"


class ChannelIdentity(models.Model):
    """One identity of a member on one channel; an identity belongs to exactly one member."""

    chain = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(max_length=32, choices=IdentityChannel.choices)
    value = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "channel", "value"], name="identity_unique_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.value}"

    @classmethod
    def scope_q(cls, path: str) -> models.Q:
        return models.Q(member__home_store__path__startswith=path)


class LoginCode(models.Model):
    """A one-time SMS code for the member pages (H5). Only its hash is kept; it expires in
    minutes and dies after a few wrong guesses, so a 6-digit code cannot be brute-forced."""

    chain = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="+")
    phone = models.CharField(max_length=20)  # E.164
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["chain", "phone", "created_at"], name="login_code_idx")]

    def __str__(self) -> str:
        return f"login code for {self.phone[:-4]}****"
