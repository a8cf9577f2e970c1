import importlib
import json
import os

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Sets sse_notify's internal constants from ``BENCH_CONSTANTS`` (JSON, by dotted path) in each process.

    The ``redis-all`` target compares the fan-out mode ``publish.GROUP_SEND_THRESHOLD = 0``.
    """

    name = "bench"

    def ready(self) -> None:
        for path, value in json.loads(os.environ.get("BENCH_CONSTANTS") or "{}").items():
            module_name, _, name = path.rpartition(".")
            module = importlib.import_module(module_name)
            if not hasattr(module, name):
                raise AttributeError(f"{module_name} has no constant {name!r}")
            setattr(module, name, value)
