from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("g/<int:group_id>/", views.group_home, name="group"),
    path("p/<int:product_id>/", views.product, name="product"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("cart/", views.cart_page, name="cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.orders, name="orders"),
    path("orders/<str:number>/", views.order, name="order"),
    path("orders/<str:number>/pay/", views.pay, name="pay"),
    path("orders/<str:number>/cancel/", views.cancel, name="cancel"),
    path("orders/<str:number>/refund/", views.refund, name="refund"),
]
