from django.apps import AppConfig
from django.conf import settings


class TestsConfig(AppConfig):
    """Applies ``settings.SSE_NOTIFY_TEST_CONSTANTS`` in every process of the suite.

    The documented test hook for internal constants: the test run and its child
    processes (Daphne, senders; see ``subprocess_env(constants=...)``) start with
    the same shortened timings.
    """

    name = "tests"
    label = "sse_notify_tests"

    def ready(self) -> None:
        from tests.support import apply_constants

        apply_constants(getattr(settings, "SSE_NOTIFY_TEST_CONSTANTS", {}))
