from django.urls import include, path

from shequn.api import api
from shequn.orders.webhooks import wechatpay_notify

urlpatterns = [
    path("api/", api.urls),
    path("m/", include("shequn.shop.urls")),
    path("webhooks/wechatpay/notify", wechatpay_notify, name="wechatpay-notify"),
    path("", include("shequn.console.urls")),
]
