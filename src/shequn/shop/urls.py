from django.urls import path

from . import c2b_views, coupon_views, group_buy_views, sharer_views, views

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
    path("tuan/<int:campaign_id>/", group_buy_views.group_buy, name="group_buy"),
    path("tuan/<int:campaign_id>/join/", group_buy_views.join_group_buy, name="join_group_buy"),
    path("teams/<int:team_id>/", group_buy_views.team, name="team"),
    path("c2b/<int:proposal_id>/", c2b_views.proposal, name="proposal"),
    path("c2b/<int:proposal_id>/preorder/", c2b_views.preorder, name="preorder"),
    path("coupons/", coupon_views.coupons, name="coupons"),
    path("coupons/<int:template_id>/claim/", coupon_views.claim, name="claim_coupon"),
    path("sharer/", sharer_views.sharer_home, name="sharer"),
    path("sharer/apply/", sharer_views.sharer_apply, name="sharer_apply"),
    path("sharer/withdraw/", sharer_views.sharer_withdraw, name="sharer_withdraw"),
    path("s/<str:code>/", sharer_views.share_landing, name="share"),
    path("s/<str:code>/poster.png", sharer_views.share_poster, name="share_poster"),
]
