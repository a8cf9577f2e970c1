import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django_application = get_asgi_application()

from sse_notify.asgi import StreamRoute  # noqa: E402 (needs settings)

# As the README sets it up: the stream's fast route in front of Django.
application = StreamRoute(django_application)
