from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "shequn.groups"
    label = "groups"
    verbose_name = "社群"
