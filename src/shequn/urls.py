from django.urls import include, path

from shequn.api import api
from shequn.integrations.wecom.webhooks import wecom_callback
from shequn.orders.webhooks import wechatpay_notify

urlpatterns = [
    path("api/", api.urls),
    path("m/", include("shequn.shop.urls")),
    path("webhooks/wechatpay/notify", wechatpay_notify, name="wechatpay-notify"),
    path("webhooks/wecom/callback", wecom_callback, name="wecom-callback"),
    path("", include("shequn.console.urls")),
]
