"""Webhook ingestion through the full Django stack, against a bare view in the same harness.

Each request is a WSGI call into ``WSGIHandler`` (every middleware, URL resolution, the DRF view):
a real svix-signed ``calendar.sync_events`` delivery is verified, stored and its processing task
enqueued on a backend that only enqueues (DummyBackend), so this measures ingestion alone.
Baselines, same harness and same body and headers:
- a bare view answering 200;
- a view storing one row per request (the floor of any ingestion that stores before it answers).
Requests alternate between the three in blocks, so load from elsewhere hits all of them alike.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from django_recall_calendar.tasks import _task_backends
from django_recall_calendar.testing import signed_headers

from . import urls
from .harness import emulator, make_calendar
from .table import print_goal, print_table

REQUESTS = 1_500
BLOCK = 100
WARM_UP = 30


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
    cuts = statistics.quantiles(latencies, n=100)
    return [name, len(latencies) / sum(latencies), cuts[49] * 1000, cuts[98] * 1000]


def run(database: str) -> None:
    handler = WSGIHandler()
    with emulator() as running:
        calendar = make_calendar(running)
    signed = deliveries(str(calendar.recall_id), WARM_UP + REQUESTS)
    targets: dict[str, Callable[[int], float]] = {}
    targets["bare view"] = lambda i: post(handler, "/bare/", *signed[i])
    targets["view storing one row"] = lambda i: post(handler, "/store-one-row/", *signed[i])
    targets["webhook endpoint"] = lambda i: post(handler, "/recall/webhooks/", *signed[i])
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for call in targets.values():
        for index in range(WARM_UP):
            call(index)
    for block in range(WARM_UP, WARM_UP + REQUESTS, BLOCK):
        for name, call in targets.items():
            latencies[name].extend(call(i) for i in range(block, block + BLOCK))

    stored = WebhookDelivery.objects.filter(event_type="calendar.sync_events")
    assert stored.count() == WARM_UP + REQUESTS, stored.count()
    assert not stored.exclude(status=DeliveryStatus.RECEIVED).exists()
    enqueued = len(_task_backends["default"].results)
    assert enqueued == WARM_UP + REQUESTS, enqueued

    rows = [summary(name, values) for name, values in latencies.items()]
    print_table(
        f"Webhook ingestion, {REQUESTS:,} requests each, WSGIHandler in-process ({database})",
        ["target", "requests/s", "p50 ms", "p99 ms"],
        rows,
    )
    bare, floor, webhook = (row[1] for row in rows)
    print(
        f"Every delivery verified, stored and enqueued ({enqueued:,} tasks). The webhook endpoint "
        f"runs at {webhook / bare:.2f}x the bare view's rate and {webhook / floor:.2f}x the rate "
        "of a view that only stores one row."
    )
    print_goal(
        f"webhook ingestion ({database})",
        "at least half the bare view's rate",
        webhook >= bare / 2,
        f"{webhook / bare:.2f}x the bare view, {webhook / floor:.2f}x a view storing one row",
    )
