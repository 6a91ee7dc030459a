from django.contrib.auth.views import LogoutView
from django.urls import path

from . import demand_views, views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="console:login"), name="logout"),
    path("stores/", views.stores, name="stores"),
    path("staff/", views.staff_list, name="staff"),
    path("groups/", views.groups, name="groups"),
    path("groups/new/", views.group_new, name="group_new"),
    path("groups/<int:group_id>/", views.group_detail, name="group"),
    path("members/", views.members, name="members"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:invitation_id>/", views.invitation_detail, name="invitation"),
    path("invitations/<int:invitation_id>/qr.png", views.invitation_qr, name="invitation_qr"),
    path(
        "invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"
    ),
    path("rewards/", views.rewards, name="rewards"),
    path("orders/", views.orders, name="orders"),
    path("orders/export.xlsx", views.orders_export, name="orders_export"),
    path("orders/<int:order_id>/", views.order_detail, name="order"),
    path("refunds/", views.refunds, name="refunds"),
    path("cards/", views.cards, name="cards"),
    path("promotions/calendar/", views.promotion_calendar, name="calendar"),
    path("referrals/", views.referrals, name="referrals"),
    path("referrals/export.xlsx", views.referrals_export, name="referrals_export"),
    path("messages/", demand_views.group_messages, name="messages"),
    path("complaints/", demand_views.complaints, name="complaints"),
    path("demand/", demand_views.demand_board, name="demand"),
    path("demand/topics/<int:topic_id>/propose/", demand_views.propose, name="propose"),
    path("proposals/", demand_views.proposals, name="proposals"),
    path("proposals/<int:proposal_id>/", demand_views.proposal_detail, name="proposal"),
    path(
        "deliveries/<int:line_id>/receive/", demand_views.receive_delivery, name="receive_delivery"
    ),
    path("stock/", views.stock, name="stock"),
    path("pickup/", views.pickup, name="pickup"),
    path("j/<str:code>/", views.join, name="join"),
]
