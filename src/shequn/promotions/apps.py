from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "shequn.promotions"
    label = "promotions"
    verbose_name = "营销活动"
