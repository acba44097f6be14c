"""Webhook ingestion through the full Django stack, against a bare view in the same run.

A real svix-signed ``calendar.sync_events`` delivery is verified, stored and its processing task
enqueued on a backend that only enqueues (DummyBackend), so this measures ingestion alone.
Baselines, same server, same body and headers:
- a bare view answering 200;
- a view storing one row per request (the floor of any ingestion that stores before it answers).

Measured two ways:
- over HTTP, as production sees it: the three targets served by one waitress server (a
  multi-threaded pure-Python WSGI server, 8 threads) on 127.0.0.1, driven by the same load
  generator in another process (``benchmarks/load.py``, keep-alive connections) at concurrency 1
  and 8, with pre-signed unique deliveries; targets alternate in rounds so load from elsewhere hits
  all of them alike;
- in-process: each request a direct WSGI call into ``WSGIHandler`` (no sockets, no HTTP parsing),
  which shows Django's own cost per request with nothing around it.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from django_recall_calendar.testing import signed_headers

from . import urls
from .harness import emulator, make_calendar
from .table import print_goal, print_table

REQUESTS = 1_500
BLOCK = 100
WARM_UP = 30
#: Over HTTP: requests per target and concurrency level, sent in rounds that alternate targets.
HTTP_REQUESTS = 1_200
HTTP_ROUNDS = 4
CONCURRENCY = (1, 8)
SERVER_THREADS = 8
TARGETS = {
    "bare view": "/bare/",
    "view storing one row": "/store-one-row/",
    "webhook endpoint": "/recall/webhooks/",
}
ROOT = Path(__file__).resolve().parents[1]


@csrf_exempt
def store_one_row(request: HttpRequest) -> HttpResponse:
    """Stores the body as one row, nothing else: what a durable write alone costs per request."""
    WebhookDelivery.objects.create(
        message_id=f"floor_{uuid.uuid4().hex}",
        event_type="bench.floor",
        payload={"body": request.body.decode()},
        status=DeliveryStatus.IGNORED,
    )
    return HttpResponse(status=200)


urls.urlpatterns.append(path("store-one-row/", store_one_row))


class EnqueueCounter:
    """Counts enqueued tasks in every thread (each server thread has its own DummyBackend)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        signals = importlib.import_module(f"{settings.TASKS_MODULE}.signals")
        signals.task_enqueued.connect(self.enqueued, weak=False)

    def enqueued(self, **kwargs: object) -> None:
        with self.lock:
            self.count += 1


def wsgi_environ(url: str, body: bytes, headers: dict[str, str]) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": url,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        if name.lower() != "content-type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def post(handler: WSGIHandler, url: str, body: bytes, headers: dict[str, str]) -> float:
    """One request through the handler; returns its latency in seconds (asserts a 200)."""
    status: list[str] = []
    environ = wsgi_environ(url, body, headers)
    start = time.perf_counter()
    response = handler(environ, lambda line, response_headers, exc_info=None: status.append(line))
    b"".join(response)
    response.close()
    elapsed = time.perf_counter() - start
    if not status or not status[0].startswith("200"):
        raise AssertionError(f"{url} answered {status}")
    return elapsed


def deliveries(calendar_id: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed deliveries with distinct message ids, signed before the clock starts."""
    secret = settings.RECALL_CALENDAR["WEBHOOK_SECRET"]
    signed = []
    for index in range(count):
        body = json.dumps(
            {
                "event": "calendar.sync_events",
                "data": {
                    "calendar_id": calendar_id,
                    "last_updated_ts": f"2030-01-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
                },
            }
        ).encode()
        signed.append((body, signed_headers(secret, body)))
    return signed


def summary(name: str, latencies: list[float]) -> list[object]:
    """In-process, one request at a time: the rate is requests over the summed latencies."""
    return [name, len(latencies) / sum(latencies), *percentiles(latencies)]


@contextmanager
def http_server(app: WSGIHandler) -> Iterator[int]:
    """``app`` served by waitress on an ephemeral 127.0.0.1 port; yields the port."""
    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" per burst
    server = create_server(app, host="127.0.0.1", port=0, threads=SERVER_THREADS)
    opened: list = []  # the server threads' persistent database connections

    def remember(sender: object, connection: object, **kwargs: object) -> None:
        opened.append(connection)

    connection_created.connect(remember, weak=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        connection_created.disconnect(remember)
        # Closed here, not in their threads (now stopped), so the scratch database can be dropped.
        for connection in opened:
            if connection.connection is not None:
                connection.connection.close()


def load(port: int, path: str, concurrency: int, requests: list) -> tuple[float, list[float]]:
    """Run the load generator in its own process; (wall seconds, latencies)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "requests.json", Path(folder) / "result.json"
        source.write_text(json.dumps([[body.decode(), headers] for body, headers in requests]))
        command = [sys.executable, "-m", "benchmarks.load", str(port), path, str(concurrency)]
        subprocess.run(
            [*command, str(source), str(target)],
            cwd=ROOT,
            check=True,
        )
        result = json.loads(target.read_text())
    if result["failures"]:
        raise AssertionError(result["failures"])
    return result["seconds"], result["latencies"]


def over_http(calendar_id: str, database: str) -> tuple[dict[int, list[list[object]]], int]:
    """Throughput and latency of each target at each concurrency; also returns deliveries sent."""
    sent = 0
    tables: dict[int, list[list[object]]] = {}
    with http_server(WSGIHandler()) as port:
        for path in TARGETS.values():
            load(port, path, 1, deliveries(calendar_id, WARM_UP))
        sent += WARM_UP
        for concurrency in CONCURRENCY:
            seconds = dict.fromkeys(TARGETS, 0.0)
            latencies: dict[str, list[float]] = {name: [] for name in TARGETS}
            for _ in range(HTTP_ROUNDS):
                for name, path in TARGETS.items():
                    signed = deliveries(calendar_id, HTTP_REQUESTS // HTTP_ROUNDS)
                    took, measured = load(port, path, concurrency, signed)
                    seconds[name] += took
                    latencies[name].extend(measured)
                sent += HTTP_REQUESTS // HTTP_ROUNDS
            tables[concurrency] = [
                [name, len(latencies[name]) / seconds[name], *percentiles(latencies[name])]
                for name in TARGETS
            ]
            print_table(
                f"Webhook ingestion over HTTP: waitress ({SERVER_THREADS} threads) on 127.0.0.1, "
                f"{HTTP_REQUESTS:,} requests per target at concurrency {concurrency} ({database})",
                ["target", "requests/s", "p50 ms", "p99 ms"],
                tables[concurrency],
            )
    return tables, sent


def percentiles(latencies: list[float]) -> list[float]:
    cuts = statistics.quantiles(latencies, n=100)
    return [cuts[49] * 1000, cuts[98] * 1000]


def in_process(calendar_id: str, database: str) -> list[list[object]]:
    """The same three targets as direct WSGI calls, requests alternating in blocks."""
    handler = WSGIHandler()
    signed = deliveries(calendar_id, WARM_UP + REQUESTS)
    targets: dict[str, Callable[[int], float]] = {
        name: (lambda i, path=path: post(handler, path, *signed[i]))
        for name, path in TARGETS.items()
    }
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for call in targets.values():
        for index in range(WARM_UP):
            call(index)
    for block in range(WARM_UP, WARM_UP + REQUESTS, BLOCK):
        for name, call in targets.items():
            latencies[name].extend(call(i) for i in range(block, block + BLOCK))
    rows = [summary(name, values) for name, values in latencies.items()]
    print_table(
        f"Webhook ingestion, {REQUESTS:,} requests each, WSGIHandler in-process ({database})",
        ["target", "requests/s", "p50 ms", "p99 ms"],
        rows,
    )
    return rows


def verdict(label: str, rows: list[list[object]]) -> str:
    bare, floor, webhook = (float(row[1]) for row in rows)  # type: ignore[arg-type]
    print(
        f"{label}: the webhook endpoint runs at {webhook / bare:.2f}x the bare view's rate and "
        f"{webhook / floor:.2f}x the rate of a view that only stores one row."
    )
    return f"{webhook / bare:.2f}x"


def run(database: str) -> None:
    with emulator() as running:
        calendar = make_calendar(running)
    counter = EnqueueCounter()
    calendar_id = str(calendar.recall_id)
    tables, sent = over_http(calendar_id, database)
    rows = in_process(calendar_id, database)
    sent += WARM_UP + REQUESTS

    stored = WebhookDelivery.objects.filter(event_type="calendar.sync_events")
    assert stored.count() == sent, (stored.count(), sent)
    assert not stored.exclude(status=DeliveryStatus.RECEIVED).exists()
    enqueued = counter.count
    assert enqueued == sent, enqueued
    print(f"\nEvery delivery verified, stored and enqueued ({enqueued:,} tasks).")

    measured = {c: verdict(f"HTTP, concurrency {c}", table) for c, table in tables.items()}
    in_process_ratio = verdict("In-process", rows)
    http_met = all(
        float(table[2][1]) >= float(table[0][1]) / 2  # type: ignore[arg-type]
        for table in tables.values()
    )
    print_goal(
        f"webhook ingestion over HTTP ({database})",
        "at least half the bare view's rate",
        http_met,
        ", ".join(f"{ratio} the bare view at concurrency {c}" for c, ratio in measured.items()),
    )
    print_goal(
        f"webhook ingestion in-process ({database})",
        "at least half the bare view's rate",
        float(rows[2][1]) >= float(rows[0][1]) / 2,  # type: ignore[arg-type]
        f"{in_process_ratio} the bare view (no HTTP server: Django's cost alone)",
    )
