from django.urls import path

from . import preference_views, stream, views

app_name = "sse_notify"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("preferences/", preference_views.preferences_page, name="preferences"),
    path("api/preferences/", preference_views.preferences_api, name="preferences_api"),
    path("stream/", stream.stream, name="stream"),
    path("api/notifications/", views.notification_list, name="list"),
    path("api/unread/", views.unread_count, name="unread_count"),
    path("api/notifications/<int:pk>/read/", views.mark_read, name="mark_read"),
    path("api/notifications/<int:pk>/unread/", views.mark_unread, name="mark_unread"),
    path("api/notifications/<int:pk>/read-group/", views.mark_group_read, name="mark_group_read"),
    path("api/read-all/", views.mark_all_read, name="mark_all_read"),
]
