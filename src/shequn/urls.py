from django.urls import include, path

from shequn.api import api
from shequn.demand.webhook import message_webhook
from shequn.groups.wecom_webhook import wecom_callback
from shequn.orders.webhooks import wechatpay_notify

urlpatterns = [
    path("api/", api.urls),
    path("m/", include("shequn.shop.urls")),
    path("webhooks/wechatpay/notify", wechatpay_notify, name="wechatpay-notify"),
    path("webhooks/wecom/callback", wecom_callback, name="wecom-callback"),
    path("webhooks/demand/messages", message_webhook, name="demand-message-webhook"),
    path("", include("shequn.console.urls")),
]
