"""The README's "Installation in your project", followed as written in a fresh ``startproject``.

The steps are not copied here: they are read from README.md, from the fenced
blocks that follow a ``<!-- fresh-project: ... -->`` marker, so the README and
this test cannot drift apart. Markers:

- ``run``: shell commands, one per line, run in order (the install step, migrate, ...);
- ``append FILE`` / ``write FILE``: a snippet appended to / written as a project file;
- ``serve NAME``: the command that serves the project (this test adds a free port);
- ``send``: the command that sends a notification from another process;
- ``production ...``: the same, for the production setup (WhiteNoise), applied on a copy;
- ``daphne-development ...``: Django's static handler for plain Daphne in development, on a copy.

What the test adds, and only that: a copy of the checkout as ``/path/to/sse_notify``
(pip builds in the source tree), the bind address and port on the serve line,
``--noinput`` with ``DJANGO_SUPERUSER_PASSWORD`` for ``createsuperuser``, and
``DEBUG = False`` / ``ALLOWED_HOSTS`` for production. The fresh venv installs the
package from the copy with the README's own pip line. In CI (or with
``SSE_NOTIFY_FRESH_INSTALL=full``) the venv is empty, so pip also installs Django,
channels and Daphne from the index; otherwise the venv sees this test run's
site-packages for those (fast), and only sse_notify itself is installed into it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import IN_CI, ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MARKER = re.compile(r"<!-- fresh-project: (?P<spec>[^>]+?) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)
CHECKOUT = "/path/to/sse_notify"
PASSWORD = "fresh-project-pw"
FULL_INSTALL = IN_CI or os.environ.get("SSE_NOTIFY_FRESH_INSTALL") == "full"
OPEN = "() => window.sseNotify && window.sseNotify.connection === 'open'"
COPY_IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "node_modules",
    ".hypothesis",
    ".*_cache",
    "*.sqlite3",
    "staticfiles",
)


def readme_steps() -> list[tuple[list[str], str]]:
    """``(marker words, block body)`` for every marked block, in README order."""
    steps = [(m["spec"].split(), m["body"]) for m in MARKER.finditer((ROOT / "README.md").read_text())]
    assert steps, "README.md has no <!-- fresh-project: ... --> blocks"
    return steps


def step(*spec: str) -> str:
    [body] = [body for words, body in readme_steps() if words == list(spec)]
    return body


def commands(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@dataclass
class Project:
    """A project made by ``django-admin startproject mysite`` in its own venv."""

    path: Path
    venv: Path
    checkout: Path
    env: dict[str, str] = field(default_factory=dict)

    def sh(self, line: str, cwd: Path | None = None, timeout: float = 600) -> str:
        """Run one README line in bash, as a developer would in the activated venv."""
        line = line.replace(CHECKOUT, shlex.quote(str(self.checkout)))
        if re.match(r"python manage\.py createsuperuser\b", line):
            line += " --noinput"
        proc = subprocess.run(
            ["bash", "-c", line],
            cwd=cwd or self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"$ {line}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    def apply(self, words: list[str], body: str) -> None:
        action, *rest = words
        if action == "run":
            for line in commands(body):
                self.sh(line)
        elif action == "append":
            target = self.path / rest[0]
            target.write_text(target.read_text() + "\n" + body)
        elif action == "write":
            target = self.path / rest[0]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
        else:
            raise AssertionError(f"unknown README marker {words}")

    def copy(self, dest: Path) -> Project:
        shutil.copytree(self.path, dest)
        return Project(dest, self.venv, self.checkout, self.env)

    def serve(self, line: str, log: Path) -> Server:
        port = free_port()
        if line.startswith("python manage.py runserver"):
            line = f"{line} 127.0.0.1:{port}"
        elif line.startswith("daphne "):
            line = f"daphne -b 127.0.0.1 -p {port} {line.removeprefix('daphne ')}"
        else:
            raise AssertionError(f"do not know how to give a port to {line!r}")
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {line}"],
                cwd=self.path,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # runserver's autoreloader runs a child: stop the whole group
            )
        server = Server(proc, port, log)
        server.wait_listening()
        return server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not listen on {self.port}:\n{self.log.read_text()}")

    def stop(self) -> None:
        print(f"--- {self.log.name}\n{self.log.read_text()[-3000:]}")  # shown when the test fails
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def make_venv(venv: Path) -> dict[str, str]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    if not FULL_INSTALL:
        # The venv sees this run's site-packages (Django, channels, Daphne, WhiteNoise
        # at the pinned versions) after its own, so pip finds them installed and the
        # README's pip line installs only sse_notify itself into the venv.
        purelib = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(purelib, "_sse_notify_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        for script, module in (("daphne", "daphne"), ("django-admin", "django")):
            wrapper = venv / "bin" / script
            wrapper.write_text(f'#!/bin/sh\nexec "{venv}/bin/python" -m {module} "$@"\n')
            wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "PYTHONHOME")}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Steps 1-5 of the README's installation, up to (not including) serving."""
    root = tmp_path_factory.mktemp("fresh")
    checkout = root / "sse_notify"
    shutil.copytree(ROOT, checkout, ignore=COPY_IGNORE)
    venv = root / "venv"
    fresh = Project(root / "mysite", venv, checkout, make_venv(venv))
    steps = [(words, body) for words, body in readme_steps() if words[0] in ("run", "append", "write")]
    # The install step comes before there is a project; everything after it runs next to manage.py.
    install_words, install_body = steps.pop(0)
    assert install_words == ["run"] and "pip install" in install_body
    for line in commands(install_body):
        fresh.sh(line, cwd=root, timeout=900)
    fresh.sh("django-admin startproject mysite", cwd=root)
    for words, body in steps:
        fresh.apply(words, body)
    # The package the project runs is the installed copy, not this checkout.
    where = fresh.sh('python -c "import sse_notify; print(sse_notify.__file__)"')
    assert where.strip().startswith(str(venv)), where
    return fresh


def sign_in(browser: Any, base: str) -> Any:
    context = browser.new_context(base_url=base, viewport={"width": 1100, "height": 640})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/admin/login/?next=/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def assert_static_files(base: str, status: int) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:
        for path in ("/static/sse_notify/sse-notify.js", "/static/sse_notify/sse-notify.css"):
            assert client.get(path).status_code == status, path


def assert_live_toast(project: Project, page: Any) -> None:
    page.wait_for_function(OPEN, timeout=30_000)
    [send] = commands(step("send"))
    project.sh(send)
    title = re.search(r'--title "([^"]+)"', send)
    assert title, send
    expect(page.locator(".sse-notify-toast", has_text=title[1])).to_be_visible(timeout=20_000)


def test_the_checks_are_clean(project: Project) -> None:
    assert "System check identified no issues" in project.sh("python manage.py check")


def test_development_runserver_serves_the_page_static_files_and_a_live_toast(
    project: Project, playwright_browser: Any, tmp_path: Path
) -> None:
    [line] = commands(step("serve", "development"))
    server = project.serve(line, tmp_path / "runserver.log")
    try:
        assert_static_files(server.base, 200)
        page = sign_in(playwright_browser, server.base)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.reload()
        expect(page.locator("main")).to_have_text("Signed in as admin.")
        assert_live_toast(project, page)
        assert not [e for e in errors if "sse_notify" in e], errors
        page.context.close()
    finally:
        server.stop()


def test_plain_daphne_serves_no_static_files_and_the_page_says_how_to_fix_it(
    project: Project, playwright_browser: Any, tmp_path: Path
) -> None:
    """The README warns that plain Daphne serves no static files; the tag's markup tells the developer."""
    [production_line] = commands(step("serve", "production"))
    assert production_line.startswith("daphne ")
    server = project.serve(production_line, tmp_path / "daphne.log")  # without the production steps
    try:
        assert_static_files(server.base, 404)
        page = sign_in(playwright_browser, server.base)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.reload()
        page.wait_for_load_state("load")
        js = f"sse_notify: {server.base}/static/sse_notify/sse-notify.js did not load"
        css = f"sse_notify: {server.base}/static/sse_notify/sse-notify.css did not load"
        deadline = time.monotonic() + 10
        while not ([e for e in errors if js in e] and [e for e in errors if css in e]) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        [message] = [e for e in errors if js in e]
        assert "runserver" in message and "collectstatic" in message and "WhiteNoise" in message
        assert [e for e in errors if css in e], errors
        page.context.close()
    finally:
        server.stop()


def test_plain_daphne_with_the_development_static_handler_serves_them(project: Project, tmp_path: Path) -> None:
    dev = project.copy(tmp_path / "mysite")
    [(words, body)] = [(words, body) for words, body in readme_steps() if words[0] == "daphne-development"]
    dev.apply(words[1:], body)
    server = dev.serve(commands(step("serve", "production"))[0], tmp_path / "daphne.log")
    try:
        assert_static_files(server.base, 200)
        with httpx.Client(base_url=server.base, timeout=20) as client:
            assert client.get("/notifications/stream/").status_code == 403  # the app behind it still answers
    finally:
        server.stop()


def test_production_collectstatic_and_whitenoise_under_daphne(
    project: Project, playwright_browser: Any, tmp_path: Path
) -> None:
    prod = project.copy(tmp_path / "mysite")
    settings = prod.path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nDEBUG = False\nALLOWED_HOSTS = ["127.0.0.1"]\n')
    for words, body in readme_steps():
        if words[0] == "production":
            prod.apply(words[1:], body)
    [line] = commands(step("serve", "production"))
    server = prod.serve(line, tmp_path / "daphne.log")
    try:
        assert_static_files(server.base, 200)
        page = sign_in(playwright_browser, server.base)
        assert_live_toast(prod, page)
        page.context.close()
    finally:
        server.stop()
