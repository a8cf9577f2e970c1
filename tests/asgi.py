"""The tests' ASGI application, set up as the README says: the stream's fast route
(``sse_notify.asgi.StreamRoute``) in front of Django. ``django_application`` is
Django alone, for tests of the plain view (``daphne(application=...)``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

django_application = get_asgi_application()

from sse_notify.asgi import StreamRoute  # noqa: E402 (needs settings)

application = StreamRoute(django_application)
