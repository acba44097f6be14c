"""CPU per request of the webhook benchmark's targets, in process: where the endpoint's time goes.

Not part of ``make bench`` (no goal): a diagnostic for work on the endpoint's speed. Under waitress
(one process, one GIL) the CPU each request costs decides the rate at concurrency 8, and wall
times over HTTP are too noisy on a shared machine to show a change of a few percent. This calls
``benchmarks.wsgi.application`` as a WSGI server would (response read and closed, so the
processing is enqueued), with the same signed deliveries as ``webhook_bench``, and counts the
thread's CPU time (``time.thread_time``: waiting for the database is not counted), per request in
batches, for each target in turn. Compare the minimum over batches of two runs, before and after
a change, against the other targets of the same run.

    .venv/bin/python -m benchmarks webhook_cpu postgres

``BENCH_PROFILE=/tmp/endpoint.prof`` also writes a cProfile of the endpoint on thread CPU time
(read it with ``python -m pstats``); the profiler inflates small calls, so confirm any saving it
suggests with the minimum over batches.
"""

from __future__ import annotations

import cProfile
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from django.db import connections

from .table import print_table
from .webhook_bench import ENDPOINT, TARGETS, deliveries

BATCHES = 60
PER_BATCH = 50
WARM_UP = 100
#: No calendar row: the insert's subquery finds none, which costs the database, not this process.
CALENDAR_ID = "0b0b0b0b-0000-4000-8000-000000000001"


def environ(path: str, body: str, headers: dict[str, str]) -> dict:
    """The WSGI environ a server builds for a signed POST of ``body`` to ``path``."""
    data = body.encode()
    request = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    request.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return request


def start_response(status: str, headers: list, exc_info: object = None) -> None:
    if not status.startswith("200"):
        raise AssertionError(status)


def serve(path: str, signed: Iterable[tuple[str, dict[str, str]]]) -> None:
    """Each delivery through the WSGI application, its answer read and closed."""
    from .wsgi import application

    for body, headers in signed:
        answer = application(environ(path, body, headers), start_response)
        b"".join(answer)
        if hasattr(answer, "close"):
            answer.close()


def warmed_up(path: str) -> list[tuple[str, dict[str, str]]]:
    """The deliveries to measure on ``path``, once :data:`WARM_UP` others were served there."""
    signed = deliveries(CALENDAR_ID, WARM_UP + BATCHES * PER_BATCH)
    serve(path, signed[:WARM_UP])
    return signed[WARM_UP:]


def cpu_per_request(path: str) -> list[float]:
    """Per-request thread CPU (µs) of each batch, sorted, after a warm-up."""
    signed = warmed_up(path)
    batches = []
    for start in range(0, len(signed), PER_BATCH):
        began = time.thread_time_ns()
        serve(path, signed[start : start + PER_BATCH])
        batches.append((time.thread_time_ns() - began) / PER_BATCH / 1000)
    return sorted(batches)


def profile_endpoint(target: str) -> None:
    signed = warmed_up(TARGETS[ENDPOINT])
    profiler = cProfile.Profile(time.thread_time)
    profiler.runcall(serve, TARGETS[ENDPOINT], signed)
    profiler.dump_stats(target)
    print(f"\ncProfile of the endpoint (thread CPU time) written to {target}")


def run(database: str) -> None:
    from . import wsgi

    with tempfile.TemporaryDirectory() as folder:
        os.environ["BENCH_TASK_LOG"] = str(Path(folder) / "enqueued.log")  # as webhook_bench
        try:
            rows = []
            for name, path in TARGETS.items():
                batches = cpu_per_request(path)
                rows.append([name, batches[0], batches[BATCHES // 10], statistics.median(batches)])
            print_table(
                f"CPU per request in process, µs (thread CPU time, {BATCHES} batches of "
                f"{PER_BATCH}, {database})",
                ["target", "min", "p10", "median"],
                rows,
            )
            if os.environ.get("BENCH_PROFILE"):
                profile_endpoint(os.environ["BENCH_PROFILE"])
        finally:  # the floor's own connection would keep the scratch database from being dropped
            if hasattr(wsgi._local, "connection"):
                wsgi._local.connection.close()
            connections.close_all()
