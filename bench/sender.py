"""The separate sending process: JSON commands on stdin, JSON results on stdout (one a line)."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from bench import actions  # noqa: E402

for line in sys.stdin:
    try:
        result = actions.handle(json.loads(line))
    except Exception as exc:  # report, keep serving
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
