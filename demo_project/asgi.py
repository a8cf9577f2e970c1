"""ASGI entry point of the demo (``daphne demo_project.asgi:application``).

Static files are served by Django's ASGIStaticFilesHandler (as ``runserver``
does under DEBUG, but here also with DEBUG off, the demo's default), so the demo
needs no ``collectstatic`` and no web server in front. A real site serves them
with WhiteNoise or its reverse proxy instead: see the README's "Static files".
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

django_application = get_asgi_application()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402 (needs settings)

from sse_notify.asgi import StreamRoute  # noqa: E402 (needs settings)

# The stream's fast route in front of Django, as the README sets it up.
application = ASGIStaticFilesHandler(StreamRoute(django_application))
