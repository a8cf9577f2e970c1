from django.urls import path

from . import preference_views, stream, unsubscribe, views
from .cors import allow_preflight

app_name = "sse_notify"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("preferences/", preference_views.preferences_page, name="preferences"),
    path("api/preferences/", allow_preflight("GET", "POST")(preference_views.preferences_api), name="preferences_api"),
    # Cross-origin clients (CORS_ALLOWED_ORIGINS) get their preflights answered here.
    path("stream/", allow_preflight("GET")(stream.stream), name="stream"),
    path("api/notifications/", allow_preflight("GET")(views.notification_list), name="list"),
    path("api/unread/", allow_preflight("GET")(views.unread_count), name="unread_count"),
    path("api/notifications/<int:pk>/read/", allow_preflight("POST")(views.mark_read), name="mark_read"),
    path("api/notifications/<int:pk>/unread/", allow_preflight("POST")(views.mark_unread), name="mark_unread"),
    path(
        "api/notifications/<int:pk>/read-group/",
        allow_preflight("POST")(views.mark_group_read),
        name="mark_group_read",
    ),
    path("api/read-all/", allow_preflight("POST")(views.mark_all_read), name="mark_all_read"),
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    # Anything else under api/ (an id that is not a number, a typo): JSON, as every endpoint
    # answers. Only paths ending in "/": without one, APPEND_SLASH still redirects to the
    # endpoint the client meant ("api/unread" -> "api/unread/").
    path("api/<path:anything>/", allow_preflight("GET", "POST")(views.api_not_found), name="api_not_found"),
]
