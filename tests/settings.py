"""Settings for the test suite (separate from the demo).

SQLite by default; SSE_NOTIFY_TEST_DB=postgres runs the same suite on the
PostgreSQL server at 127.0.0.1:5432. The SQLite database is a file so that
end-to-end tests' Daphne subprocesses can share it.
"""

import atexit
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sse_notify",
    "tests.apps.TestsConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Each run gets its own database (file or PostgreSQL name), so two checkouts can
# run the suite at once; child processes are handed this run's names (conftest).
_RUN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
if os.environ.get("SSE_NOTIFY_TEST_SQLITE"):
    _DB_FILE = os.environ["SSE_NOTIFY_TEST_SQLITE"]
else:
    _DB_DIR = tempfile.mkdtemp(prefix="sse_notify_test_")
    atexit.register(shutil.rmtree, _DB_DIR, True)
    _DB_FILE = str(Path(_DB_DIR) / "db.sqlite3")
if os.environ.get("SSE_NOTIFY_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SSE_NOTIFY_PG_NAME", "sse_notify"),
            "USER": os.environ.get("SSE_NOTIFY_PG_USER", "postgres"),
            "HOST": os.environ.get("SSE_NOTIFY_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("SSE_NOTIFY_PG_PORT", "5432"),
            "TEST": {"NAME": os.environ.get("SSE_NOTIFY_PG_TEST_NAME", f"test_sse_notify_{_RUN}")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _DB_FILE,
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {"NAME": _DB_FILE},
        }
    }

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
SSE_NOTIFY = {"POLL_INTERVAL": 0.2, "HEARTBEAT": 15.0}
#: Internal constants set in every process of the run (tests/apps.py), by dotted path.
SSE_NOTIFY_TEST_CONSTANTS = {"sse_notify.publish.PUBLISH_TIMEOUT": 1.0}

# End-to-end tests start Daphne subprocesses with these settings plus overrides
# passed as JSON in the environment (see tests/conftest.py: ``daphne`` fixture).
if os.environ.get("SSE_NOTIFY_TEST_LAYERS"):
    CHANNEL_LAYERS = json.loads(os.environ["SSE_NOTIFY_TEST_LAYERS"])
if os.environ.get("SSE_NOTIFY_TEST_OVERRIDES"):
    SSE_NOTIFY = {**SSE_NOTIFY, **json.loads(os.environ["SSE_NOTIFY_TEST_OVERRIDES"])}
if os.environ.get("SSE_NOTIFY_TEST_CONSTANTS"):
    SSE_NOTIFY_TEST_CONSTANTS = {**SSE_NOTIFY_TEST_CONSTANTS, **json.loads(os.environ["SSE_NOTIFY_TEST_CONSTANTS"])}
# Email tests hand child processes (the email command) their SMTP sink's port.
if os.environ.get("SSE_NOTIFY_TEST_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(os.environ["SSE_NOTIFY_TEST_SMTP_PORT"])
    EMAIL_TIMEOUT = 30
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
# Where collectstatic would put the files (never run here); with DEBUG off, W008 asks for it.
STATIC_ROOT = str(Path(tempfile.gettempdir()) / "sse_notify_test_static")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sse_notify": {"handlers": ["console"], "level": "WARNING"}},
}
SILENCED_SYSTEM_CHECKS = ["sse_notify.W001"]
# Other Django settings of a child process (``support.subprocess_env(django_settings=...)``).
if os.environ.get("SSE_NOTIFY_TEST_SETTINGS"):
    globals().update(json.loads(os.environ["SSE_NOTIFY_TEST_SETTINGS"]))
