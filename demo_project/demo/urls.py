from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/", views.projects, name="projects"),
    path("send/", views.send, name="send"),
    path("login/", views.DemoLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("_demo/streams/", views.stream_count, name="stream_count"),
    # Pages outside the demo's layout (the admin) ask for it; answer quietly.
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
