from django.contrib import admin
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def test_logout(request: HttpRequest) -> HttpResponse:
    """Sign out over a raw HTTP client (CSRF on logout is Django's business, not ours)."""
    logout(request)
    return HttpResponse("signed out")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("notifications/", include("sse_notify.urls")),
    path("test-logout/", test_logout),
]
