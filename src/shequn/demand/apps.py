from django.apps import AppConfig


class DemandConfig(AppConfig):
    name = "shequn.demand"
    label = "demand"
    verbose_name = "需求河"
