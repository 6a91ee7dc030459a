from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "shequn.console"
    label = "console"
    verbose_name = "运营后台"
