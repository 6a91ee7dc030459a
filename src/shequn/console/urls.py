from django.contrib.auth.views import LogoutView
from django.urls import path

from .views import demand, groups, home, join, orders, promotions, referrals

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", home.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="console:login"), name="logout"),
    path("stores/", home.stores, name="stores"),
    path("staff/", home.staff_list, name="staff"),
    path("groups/", groups.groups, name="groups"),
    path("groups/new/", groups.group_new, name="group_new"),
    path("groups/<int:group_id>/", groups.group_detail, name="group"),
    path("members/", groups.members, name="members"),
    path("invitations/", groups.invitations, name="invitations"),
    path("invitations/<int:invitation_id>/", groups.invitation_detail, name="invitation"),
    path("invitations/<int:invitation_id>/qr.png", groups.invitation_qr, name="invitation_qr"),
    path(
        "invitations/<int:invitation_id>/revoke/",
        groups.invitation_revoke,
        name="invitation_revoke",
    ),
    path("rewards/", groups.rewards, name="rewards"),
    path("orders/", orders.orders, name="orders"),
    path("orders/export.xlsx", orders.orders_export, name="orders_export"),
    path("orders/<int:order_id>/", orders.order_detail, name="order"),
    path("refunds/", orders.refunds, name="refunds"),
    path("cards/", promotions.cards, name="cards"),
    path("promotions/calendar/", promotions.promotion_calendar, name="calendar"),
    path("referrals/", referrals.referrals, name="referrals"),
    path("referrals/export.xlsx", referrals.referrals_export, name="referrals_export"),
    path("messages/", demand.group_messages, name="messages"),
    path("complaints/", demand.complaints, name="complaints"),
    path("demand/", demand.demand_board, name="demand"),
    path("demand/topics/<int:topic_id>/propose/", demand.propose, name="propose"),
    path("proposals/", demand.proposals, name="proposals"),
    path("proposals/<int:proposal_id>/", demand.proposal_detail, name="proposal"),
    path("deliveries/<int:line_id>/receive/", demand.receive_delivery, name="receive_delivery"),
    path("stock/", home.stock, name="stock"),
    path("pickup/", orders.pickup, name="pickup"),
    path("j/<str:code>/", join.join, name="join"),
]
