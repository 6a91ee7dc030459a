from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "shequn.referrals"
    label = "referrals"
    verbose_name = "分销与账本"
