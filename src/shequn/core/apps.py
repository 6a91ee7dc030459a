from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "shequn.core"
    label = "core"
    verbose_name = "核心"
