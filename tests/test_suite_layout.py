"""The suite's own rules, checked so they hold as tests are added (see the README's tests section).

- Test modules import shared helpers from ``tests.support`` (or, for the browser tests,
  ``tests.browser.pages``), never from another test module or from a conftest, so any test
  module can be moved or split without breaking others.
- A missing component is ``support.need()`` (skips locally, fails in CI) and a test of one
  database is ``@support.postgres_only`` / ``@support.sqlite_only`` (CI runs both): no other
  skip, so no skip can hide a failure in CI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

TESTS = ROOT / "tests"
SOURCES = sorted(p for p in TESTS.rglob("*.py") if p.name != "support.py")


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_module_imports_another_or_a_conftest(path: Path) -> None:
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            last = name.rsplit(".", 1)[-1]
            if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                bad.append(f"{where(path, node)} imports {name}")
    assert bad == [], "import shared helpers from tests.support instead:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_skip_besides_need_and_the_database_markers(path: Path) -> None:
    bad = [
        f"{where(path, node)} uses pytest {node.attr}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in ("skip", "skipif", "importorskip", "xfail")
    ]
    assert bad == [], "use support.need(), @support.postgres_only or @support.sqlite_only:\n" + "\n".join(bad)
