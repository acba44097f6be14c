"""``make demo``: the example project against the Recall emulator, offline, with no keys.

Migrates the SQLite database, creates a demo staff user (and prints its credentials), starts the
emulator (Recall's API plus Google- and Microsoft-like consent pages; each calendar connected in
the browser gets a realistic week of meetings, delivered through signed webhooks to the dev
server) and Django's development server, then prints the URL. Ctrl-C stops everything.

``python -m example_project.demo --setup-only`` does the database part alone.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
MANAGE_PY = Path(__file__).resolve().parent / "manage.py"


def setup_django() -> None:
    import django

    # Forced, not defaulted: the dev server started below inherits it, and a leftover value (a
    # test run's) must not point the demo at other settings.
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def ensure_demo_user(username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD):
    """The demo staff user, created or reset to the known password, so the printed one works."""
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return user


def setup() -> None:
    """The database part of the demo: migrate, then the demo user (safe to run again)."""
    migrate()
    ensure_demo_user()


def port_or_free(preferred: int) -> int:
    """``preferred`` when nothing listens there, else a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("No free TCP port on 127.0.0.1.")


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    """Return once ``port`` accepts connections; fail early if ``process`` died instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The {name} exited with status {process.returncode}.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"The {name} did not listen on port {port} within {timeout:.0f} s.")


def stop(processes: list[subprocess.Popen]) -> None:
    """Interrupt, then terminate, then kill whatever of ``processes`` still runs."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start(port: int, emulator_port: int) -> list[subprocess.Popen]:
    """The emulator, then the dev server, each ready to serve when this returns."""
    from django.conf import settings
    from django.urls import reverse

    recall = settings.RECALL_CALENDAR
    webhook_url = f"http://127.0.0.1:{port}{reverse('recall_calendar:webhook')}"
    emulator_command = [
        sys.executable,
        "-m",
        "django_recall_calendar.testing",
        "--port",
        str(emulator_port),
        "--webhook-url",
        webhook_url,
        "--api-key",
        recall["API_KEY"],
        "--webhook-secret",
        recall["WEBHOOK_SECRET"],
        "--demo",
    ]
    server_command = [sys.executable, str(MANAGE_PY), "runserver", f"127.0.0.1:{port}"]
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(emulator_command))
        wait_for_port(emulator_port, processes[0], "Recall emulator")
        processes.append(subprocess.Popen([*server_command, "--noreload"]))
        wait_for_port(port, processes[1], "development server")
    except BaseException:
        stop(processes)
        raise
    return processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="dev server port (default 8000)")
    parser.add_argument("--emulator-port", type=int, default=8001, help="emulator port")
    parser.add_argument("--setup-only", action="store_true", help="migrate and create the user")
    args = parser.parse_args(argv)

    # The demo is a laptop's: its debug pages help (the example project is off by default).
    os.environ.setdefault("DJANGO_DEBUG", "1")
    if os.environ.pop("RECALL_API_KEY", None):
        print("Ignoring RECALL_API_KEY: the demo always runs against the local emulator.")
    emulator_port = port_or_free(args.emulator_port)
    port = port_or_free(args.port if args.port != emulator_port else 0)
    # Read by example_project/settings.py, here and in the dev server started below.
    os.environ["RECALL_EMULATOR_URL"] = f"http://127.0.0.1:{emulator_port}"
    setup_django()
    setup()
    print(f"Demo staff user: username {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}")
    if args.setup_only:
        return 0

    processes = start(port, emulator_port)
    print(
        f"\nThe demo runs at http://127.0.0.1:{port}/ (admin: /admin/; "
        f"Recall emulator: http://127.0.0.1:{emulator_port}/). Press Ctrl-C to stop.\n",
        flush=True,
    )
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("A demo process exited; stopping the others.")
        return 1
    except KeyboardInterrupt:
        print("\nStopping the demo.")
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
