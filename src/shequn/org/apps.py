from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "shequn.org"
    label = "org"
    verbose_name = "组织"
