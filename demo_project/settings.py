"""Settings for the demo site: SQLite and the in-memory channel layer, nothing to install.

Environment: DEMO_DB (SQLite file), DEMO_DEBUG=1 (``manage.py demo --debug``; off by default,
since people copy demos), DEMO_REDIS_URL=redis://127.0.0.1:6379/0 to use channels_redis,
DEMO_POLL_INTERVAL / DEMO_RETRY_MS / DEMO_TOAST_TIMEOUT_MS (timings).

Static files are served by ``demo_project/asgi.py`` (Django's ASGI static handler) with
or without DEBUG, so the demo needs no ``collectstatic``; a real site does not do that
(see the README's "Static files").
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DEMO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sse_notify",
    "demo_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language) picks the notifications' language: English or German.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides of the app's templates (the inbox inside the demo's layout).
        "DIRS": [BASE_DIR / "demo_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(BASE_DIR / "demo.sqlite3")),
        # Take the write lock at BEGIN: concurrent senders wait instead of failing
        # with "database is locked" when a read transaction tries to upgrade.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

if os.environ.get("DEMO_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["DEMO_REDIS_URL"]], "capacity": 1000},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

SSE_NOTIFY = {
    # The demo's sending command runs in another process; with the in-memory layer
    # its notifications reach the browser through the database poll.
    "POLL_INTERVAL": float(os.environ.get("DEMO_POLL_INTERVAL", "0.5")),
    "RETRY_MS": int(os.environ.get("DEMO_RETRY_MS", "3000")),
    "TOAST_TIMEOUT_MS": int(os.environ.get("DEMO_TOAST_TIMEOUT_MS", "6000")),
    # Each person chooses per category how they hear about it: /notifications/preferences/.
    "CATEGORIES": {
        "comments": {
            "label": "Comments",
            "description": "Someone commented on a project you follow.",
            "desktop": False,
            "email": "hourly",
        },
        "mentions": {"label": "Mentions", "description": "Someone mentioned you.", "email": "immediate"},
        "security": {
            "label": "Security",
            "description": "Sign-ins and password changes.",
            "email": "immediate",
            "required": True,
        },
        "default": {"label": "Everything else", "description": "Reports, reminders and news."},
    },
    # Email for what was not seen (`manage.py sse_notify_email --loop 10` in a second terminal):
    # a short delay so the demo shows it, links back to the demo's own address.
    "EMAIL_DELAY": float(os.environ.get("DEMO_EMAIL_DELAY", "60")),
    "EMAIL_BASE_URL": os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8000"),
}
# The demo prints its emails in the terminal of the email command; set DEMO_SMTP_PORT to
# send them to a local SMTP server instead (e.g. `python -m aiosmtpd -n -l 127.0.0.1:8025`).
if os.environ.get("DEMO_SMTP_PORT"):
    EMAIL_HOST, EMAIL_PORT = "127.0.0.1", int(os.environ["DEMO_SMTP_PORT"])
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "sse_notify demo <notifications@example.com>"

# The demo's users, created by ``manage.py demo`` (admin is a superuser).
DEMO_USERS = [
    {"username": "alice", "first_name": "Alice", "last_name": "Martin", "email": "alice@example.com"},
    {"username": "bob", "first_name": "Bob", "last_name": "Nguyen", "email": "bob@example.com"},
    {"username": "carol", "first_name": "Carol", "last_name": "Okafor", "email": "carol@example.com"},
    {
        "username": "admin",
        "first_name": "Ada",
        "last_name": "Admin",
        "email": "admin@example.com",
        "is_superuser": True,
    },
]
DEMO_PASSWORD = "demo"

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "demo:login"
LOGIN_REDIRECT_URL = "demo:home"
LOGOUT_REDIRECT_URL = "demo:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sse_notify": {"handlers": ["console"], "level": "INFO"}},
}

# The demo is one Daphne process by design: the in-memory layer is right for it.
SILENCED_SYSTEM_CHECKS = ["sse_notify.W001"]
