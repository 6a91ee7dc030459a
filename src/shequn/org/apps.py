from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "shequn.org"
    label = "org"
    verbose_name = "组织"

    def ready(self) -> None:
        from . import lockout  # noqa: F401 - connects the lockout's audit receiver
