"""The demo as people run it and copy it: ``manage.py demo`` under a real Daphne.

DEBUG is off unless asked (``--debug``) and static files still load; a second
demo on a busy port says so in one line before printing anything else; the
printed URL is the README's and the printed send command works without an
activated venv; the stream-count view is closed to anonymous visitors.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.pages import Demo
from tests.support import ROOT, free_port

pytestmark = pytest.mark.e2e


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DEMO_DB": str(tmp_path / "demo.sqlite3"), **extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py's default: the demo's own settings
    env.pop("DEMO_DEBUG", None)
    return env


def wait_listening(proc: subprocess.Popen[str], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"demo did not listen on {port}:\n{log.read_text()}")


@pytest.fixture
def run_demo(tmp_path: Path) -> Iterator[object]:
    """``run_demo(*args) -> (port, log)``: ``manage.py demo --port P *args`` as a user runs it."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[int, Path]:
        port = free_port()
        log = tmp_path / f"demo{len(procs)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "demo", "--port", str(port), *args],
                cwd=ROOT,
                env=demo_env(tmp_path),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        procs.append(proc)
        wait_listening(proc, port, log)
        return port, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_demo_runs_with_debug_off_and_still_serves_its_static_files(run_demo: object) -> None:
    port, _ = run_demo()  # type: ignore[operator]
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/static/sse_notify/sse-notify.js", "/static/sse_notify/sse-notify.css", "/static/demo/demo.css"):
            assert client.get(path).status_code == 200, path
        missing = client.get("/no-such-page/")
        assert missing.status_code == 404
        assert "Using the URLconf" not in missing.text and "DEBUG = True" not in missing.text
        assert client.get("/_demo/streams/").status_code == 404  # a DEBUG-only test aid


def test_demo_debug_flag_turns_debug_on(run_demo: object) -> None:
    port, _ = run_demo("--debug")  # type: ignore[operator]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert "Using the URLconf" in client.get("/no-such-page/").text
        assert client.get("/static/sse_notify/sse-notify.js").status_code == 200


def test_second_demo_on_a_busy_port_fails_in_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "manage.py", "demo", "--port", str(port)],
            cwd=ROOT,
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stdout == ""  # no "ready" banner, no logins: nothing that looks like it worked
    [line] = proc.stderr.strip().splitlines()
    assert f"Port {port}" in line and "--port" in line and "in use" in line


def test_printed_url_is_the_readmes_and_the_send_command_works_without_a_venv(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve"],
        cwd=ROOT,
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    [readme_url] = re.findall(r"The demo prints its URL \((http://[^)]+)\)", (ROOT / "README.md").read_text())
    assert f"Open      {readme_url}" in out

    [command] = re.findall(r"Send from a terminal:\s+(.+)", out)
    assert command.endswith("--user alice --title Hello")
    # No activated venv: PATH has only the system's directories, no VIRTUAL_ENV.
    env = demo_env(tmp_path, PATH="/usr/bin:/bin")
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    sent = subprocess.run(
        shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    demo = Demo(tmp_path)
    assert demo.query("SELECT title FROM sse_notify_notification") == [("Hello",)]


def sign_in(client: httpx.Client, username: str) -> None:
    client.get("/login/")
    response = client.post(
        "/login/",
        data={"username": username, "password": "demo", "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )
    assert response.status_code == 302 and "sessionid" in client.cookies, response.text[:500]


def test_stream_count_view_is_not_open_to_anonymous_visitors(tmp_path: Path) -> None:
    demo = Demo(tmp_path)  # the browser tests' settings: DEBUG on, so the view exists
    demo.manage("demo", "--no-serve")
    demo.start()
    opened = threading.Event()
    stop = threading.Event()
    try:
        with (
            httpx.Client(base_url=demo.base, timeout=10) as anonymous,
            httpx.Client(base_url=demo.base, timeout=10) as alice,
            httpx.Client(base_url=demo.base, timeout=10) as bob,
            httpx.Client(base_url=demo.base, timeout=10) as admin,
        ):
            assert anonymous.get("/_demo/streams/").status_code == 403
            for client, name in ((alice, "alice"), (bob, "bob"), (admin, "admin")):
                sign_in(client, name)

            def hold_bobs_stream() -> None:
                with bob.stream("GET", "/notifications/stream/") as response:
                    assert response.status_code == 200
                    opened.set()
                    with contextlib.suppress(httpx.RemoteProtocolError):  # the server stops under it
                        for _ in response.iter_raw():
                            if stop.is_set():
                                return

            holder = threading.Thread(target=hold_bobs_stream, daemon=True)
            holder.start()
            assert opened.wait(10)
            bob_id = str(demo.query("SELECT id FROM auth_user WHERE username = 'bob'")[0][0])

            def counts(client: httpx.Client) -> dict[str, object]:
                deadline = time.monotonic() + 10
                while True:
                    body = client.get("/_demo/streams/").json()
                    if client is not admin or body["users"] or time.monotonic() > deadline:
                        return dict(body)
                    time.sleep(0.05)

            assert counts(admin)["users"] == {bob_id: 1}  # staff see everyone's
            assert counts(alice) == {"users": {}}  # others see only their own, not bob's
            assert counts(bob) == {"users": {bob_id: 1}}
            stop.set()
            demo.stop()  # ends bob's stream, so its thread returns
            holder.join(10)
    finally:
        demo.stop()
