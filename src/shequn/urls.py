from django.urls import include, path

from shequn.api import api

urlpatterns = [
    path("api/", api.urls),
    path("", include("shequn.console.urls")),
]
