"""axe-core in the page: the accessibility rules the browser suite holds every state to.

The engine is the ``axe.min.js`` that the PyPI package ``axe-playwright-python``
ships (a development requirement), injected with Playwright's
``add_script_tag``; nothing is downloaded when the tests run.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

# Every rule axe runs by default (WCAG 2.0/2.1/2.2 A and AA plus best practices).
RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""


def axe_script() -> str:
    return str(files("axe_playwright_python") / "axe.min.js")


def violations(page: Any) -> list[dict[str, Any]]:
    """What axe-core reports on ``page`` as it is now (injecting the engine once)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=axe_script())
    return list(page.evaluate(RUN))


def describe(found: list[dict[str, Any]]) -> str:
    """One line per violation, naming the rule and the elements, for an assertion message."""
    return "\n".join(f"{v['impact']} {v['id']}: {v['help']} -> {v['nodes']}" for v in found)
