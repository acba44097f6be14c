"""Start a production WSGI server on ``benchmarks.wsgi`` in its own process(es) and stop it.

- waitress: one process, 8 threads (a pure-Python multi-threaded server);
- gunicorn: 2 worker processes (one per core here) of 4 threads each (``gthread``).
Both get 8 request slots, so concurrency 8 never queues in front of the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django_recall_calendar import conf

ROOT = Path(__file__).resolve().parents[1]
APP = "benchmarks.wsgi:application"

COMMANDS: dict[str, Callable[[int], list[str]]] = {
    "waitress": lambda port: [
        *(sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8"),
        APP,
    ],
    "gunicorn": lambda port: [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *(
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ),
        APP,
    ],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(port: int, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _let_the_handoff_push() -> None:
    """Wait for the last deliveries' lingering push (``WEBHOOK_HANDOFF_DELAY``) before SIGTERM:
    waitress dies of it without running ``atexit`` (gunicorn's workers exit and flush), and
    ``check_every_delivery`` wants every delivery enqueued. Twice the delay, and half a second
    for the last answers' closes, which add their deliveries after the client has the answer."""
    delay = conf.duration("WEBHOOK_HANDOFF_DELAY").total_seconds()
    if delay:
        time.sleep(2 * delay + 0.5)


@contextmanager
def serving(name: str, environment: dict[str, str]) -> Iterator[int]:
    """Run server ``name`` with ``environment`` added; yields its port, stops it afterwards."""
    port = free_port()
    server = subprocess.Popen(COMMANDS[name](port), cwd=ROOT, env={**os.environ, **environment})
    try:
        _wait_until_listening(port, server)
        yield port
    finally:
        _let_the_handoff_push()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
