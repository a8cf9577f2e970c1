"""Helpers shared by the test modules (fixtures live in conftest.py).

Test modules import helpers from here, never from each other.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any


def _split(path: str) -> tuple[Any, str]:
    module_name, _, name = path.rpartition(".")
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        # A renamed or removed constant must fail the test that relies on it, not be set silently.
        raise AttributeError(f"{module_name} has no constant {name!r} to override")
    return module, name


def apply_constants(constants: Mapping[str, Any]) -> None:
    """Set internal constants by dotted path (``"sse_notify.hub.QUEUE_SIZE"``) for this process."""
    for path, value in constants.items():
        module, name = _split(path)
        setattr(module, name, value)


@contextlib.contextmanager
def override_constants(constants: Mapping[str, Any]) -> Iterator[None]:
    """Like ``override_settings``, for the internal constants of ``sse_notify`` modules."""
    saved = {path: getattr(*_split(path)) for path in constants}
    apply_constants(constants)
    try:
        yield
    finally:
        apply_constants(saved)
