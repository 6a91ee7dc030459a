from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "shequn.flows"
    label = "flows"
    verbose_name = "跨应用流程"
