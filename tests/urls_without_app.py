"""A URLconf that does not include sse_notify's URLs (tests/test_asgi.py)."""

urlpatterns: list = []
