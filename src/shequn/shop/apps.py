from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shequn.shop"
    label = "shop"
    verbose_name = "会员商城"
