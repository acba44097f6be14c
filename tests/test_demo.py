"""``make demo`` from the outside: its setup on a temporary SQLite database, and a full start/stop.

Both run ``python -m example_project.demo`` in a subprocess, as ``make demo`` does, so the example
project's own settings are used (not the test settings).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def demo_env(database: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "RECALL_API_KEY", "DJANGO_DEBUG")
    }
    env["DATABASE_URL"] = f"sqlite:///{database}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(args: list[str], database: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=demo_env(database),
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_setup_migrates_and_creates_the_demo_staff_user(tmp_path):
    database = tmp_path / "demo.sqlite3"

    first = run(["-m", "example_project.demo", "--setup-only"], database)
    assert first.returncode == 0, first.stderr
    assert "username 'demo', password 'demo'" in first.stdout

    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"recall_calendar_calendar", "recall_calendar_calendarevent", "auth_user"} <= tables
        users = db.execute("SELECT username, is_staff, is_superuser FROM auth_user").fetchall()
    assert users == [("demo", 1, 1)]

    # Running it again (a second `make demo`) keeps one user and a working password.
    again = run(["-m", "example_project.demo", "--setup-only"], database)
    assert again.returncode == 0, again.stderr
    check = run(
        [
            "example_project/manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            "from django.contrib.auth import authenticate; "
            "from django.contrib.auth.models import User; "
            "print(User.objects.count(), bool(authenticate(username='demo', password='demo')))",
        ],
        database,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["1", "True"]


def test_the_example_project_passes_its_system_checks(tmp_path):
    result = run(["example_project/manage.py", "check", "--fail-level", "WARNING"], tmp_path / "db")
    assert result.returncode == 0, result.stdout + result.stderr


def example_debug(env_value: str | None, tmp_path: Path) -> str:
    """settings.DEBUG of the example project run directly, with DJANGO_DEBUG as given."""
    env = demo_env(tmp_path / "db")
    env.pop("DJANGO_DEBUG", None)
    if env_value is not None:
        env["DJANGO_DEBUG"] = env_value
    command = "from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "example_project/manage.py", "shell", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_example_project_runs_with_debug_off_unless_asked(tmp_path):
    assert example_debug(None, tmp_path) == "False"
    assert example_debug("0", tmp_path) == "False"
    assert example_debug("1", tmp_path) == "True"


def test_make_demo_serves_the_site_and_the_emulator_and_ctrl_c_stops_both(tmp_path):
    port, emulator_port = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "example_project.demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
        ],
        cwd=ROOT,
        env=demo_env(tmp_path / "demo.sqlite3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if "The demo runs at" in line:
                break
        assert f"The demo runs at http://127.0.0.1:{port}/" in "".join(output), "".join(output)

        login = requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert login.status_code == 200 and "Sign in" in login.text
        missing = requests.get(f"http://127.0.0.1:{port}/no-such-page/", timeout=10)
        assert missing.status_code == 404
        assert "Using the URLconf defined in" in missing.text  # the debug page: DEBUG is on
        calendars = requests.get(
            f"http://127.0.0.1:{emulator_port}/api/v2/calendars/",
            headers={"Authorization": "Token demo-api-key"},
            timeout=10,
        )
        assert calendars.status_code == 200 and calendars.json()["results"] == []
        consent = requests.get(
            f"http://127.0.0.1:{emulator_port}/oauth/google/authorize",
            params={"client_id": "x", "redirect_uri": "http://127.0.0.1/", "state": "s"},
            timeout=10,
        )
        assert consent.status_code == 200 and "Allow" in consent.text

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=45) == 0  # generous: CI runs this on a loaded 2-core machine
        assert not listening(port) and not listening(emulator_port)
    finally:
        if demo.poll() is None:
            demo.kill()
        demo.wait()
        demo.stdout.close()
