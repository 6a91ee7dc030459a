from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "shequn.catalog"
    label = "catalog"
    verbose_name = "商品与库存"
