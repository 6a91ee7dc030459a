from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "shequn.members"
    label = "members"
    verbose_name = "会员"
