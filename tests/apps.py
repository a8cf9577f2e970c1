"""The suite's app: sets internal constants in every process of a test run."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings


def constant(path: str) -> tuple[Any, str]:
    """The module and name of an internal constant given by dotted path ("sse_notify.hub.QUEUE_SIZE")."""
    module_name, _, name = path.rpartition(".")
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        # A renamed or removed constant must fail the test that relies on it, not be set silently.
        raise AttributeError(f"{module_name} has no constant {name!r} to override")
    return module, name


def apply_constants(constants: Mapping[str, Any]) -> None:
    """Set internal constants by dotted path for this process."""
    for path, value in constants.items():
        setattr(*constant(path), value)


class TestsConfig(AppConfig):
    """Applies ``settings.SSE_NOTIFY_TEST_CONSTANTS`` in every process of the suite.

    The documented test hook for internal constants: the test run and its child
    processes (Daphne, senders; see ``support.subprocess_env(constants=...)``)
    start with the same shortened timings.
    """

    name = "tests"
    label = "sse_notify_tests"

    def ready(self) -> None:
        apply_constants(getattr(settings, "SSE_NOTIFY_TEST_CONSTANTS", {}))
