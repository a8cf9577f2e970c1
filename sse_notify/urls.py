from django.urls import path

from . import stream, views

app_name = "sse_notify"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("stream/", stream.stream, name="stream"),
    path("api/notifications/", views.notification_list, name="list"),
    path("api/unread/", views.unread_count, name="unread_count"),
    path("api/notifications/<int:pk>/read/", views.mark_read, name="mark_read"),
    path("api/read-all/", views.mark_all_read, name="mark_all_read"),
]
