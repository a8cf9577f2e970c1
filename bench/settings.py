"""Django settings for the sse_notify benchmark targets (Daphne servers and the sender).

Environment (set by bench/run.py):
  BENCH_DB          "postgres" (default) or a SQLite file path
  BENCH_PG_NAME     PostgreSQL database name (default sse_notify_bench)
  BENCH_LAYERS      JSON CHANNEL_LAYERS (default: the in-memory layer)
  BENCH_SSE_NOTIFY  JSON overrides of SSE_NOTIFY
"""

import json
import os

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "sse_notify",
    "bench.apps.BenchConfig",
]
# The usual stack of a Django site: the stream pays for session and auth lookups.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "bench.urls"
ASGI_APPLICATION = "bench.asgi.application"
TEMPLATES: list = []
if os.environ.get("BENCH_DB", "postgres") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "sse_notify_bench"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["BENCH_DB"],
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
CHANNEL_LAYERS = json.loads(
    os.environ.get("BENCH_LAYERS") or '{"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}'
)
SSE_NOTIFY = json.loads(os.environ.get("BENCH_SSE_NOTIFY") or "{}")
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SILENCED_SYSTEM_CHECKS = ["sse_notify.W001"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sse_notify": {"handlers": ["console"], "level": "WARNING"}},
}
