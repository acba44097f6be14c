"""Start a production WSGI server on ``benchmarks.wsgi`` in its own process(es) and stop it.

- waitress: one process, 4 threads (a pure-Python multi-threaded server);
- gunicorn: 2 worker processes (one per core here) of 2 threads each (``gthread``).

The threads were chosen for the floor, not for the endpoint. On this 2-core machine (Dec 8 2026,
concurrency 8, PostgreSQL, two runs each) the raw-INSERT floor did 2,557 / 2,433 requests/s under
waitress with 4 threads against 2,199 / 1,784 with 8; under gunicorn about the same with 2 x 2 as
with 2 x 4 (2,608 / 2,574 against 2,484 / 2,689 requests/s) with a lower p99 (7.0 / 6.9 ms against
8.1 / 7.4 ms). Threads beyond what the database waits need only contend for their process's GIL;
the requests beyond the threads wait in the server's own queue, first come first served.
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
        *(sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4"),
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
            "2",
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
