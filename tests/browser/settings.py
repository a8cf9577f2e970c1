"""The demo's settings with short timings, for the real-browser tests."""

import json
import os

from demo_project.settings import *  # noqa: F403
from demo_project.settings import SSE_NOTIFY

DEBUG = True  # enables the demo's stream-count view the tests read
SSE_NOTIFY = {
    **SSE_NOTIFY,
    "POLL_INTERVAL": 0.1,  # another process's sends show up within 0.1 s
    "RETRY_MS": 300,  # reconnect backoff starts at 0.15-0.3 s
    "HEARTBEAT": 5.0,
    "TOAST_TIMEOUT_MS": 30_000,  # toasts stay while a test looks at them
}
# A test that needs other limits (caps, lifetimes) passes them as JSON, like tests/settings.py.
if os.environ.get("SSE_NOTIFY_TEST_OVERRIDES"):
    SSE_NOTIFY = {**SSE_NOTIFY, **json.loads(os.environ["SSE_NOTIFY_TEST_OVERRIDES"])}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sse_notify": {"handlers": ["console"], "level": "WARNING"}},
}
