"""Webhook ingestion over HTTP, against the floor of what this machine can do, in the same run.

Real svix-signed ``calendar.sync_events`` deliveries are verified, stored and their processing
enqueued (on ``benchmarks.task_log``, which only writes down what was enqueued), so this measures
ingestion alone. Each target is served by the same server process(es) (``benchmarks/servers.py``:
waitress and gunicorn, in turn), driven by the same load generator in another process
(``benchmarks/load.py``: one thread, keep-alive connections, 40-60 µs of CPU per request) at
concurrency 1 and 8, with pre-signed unique deliveries; targets alternate in rounds so load from
elsewhere hits all of them alike:
- the floor: a raw WSGI app, no framework, storing the body with one autocommit INSERT into the
  same table (``benchmarks/wsgi.py``);
- a bare Django view answering 200, through the same middleware (an extra line: what Django alone
  costs per request);
- a Django view doing the floor's INSERT through Django's connection (an extra line: the least any
  Django endpoint that stores a delivery costs, before checking a signature or enqueuing);
- the app's webhook endpoint, the Django view;
- the same endpoint through the app's WSGI door (``WebhookReceiver``) in front of Django.
Afterwards every delivery is checked: stored once, and enqueued exactly once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from django_recall_calendar.testing import signed_headers

from . import task_log
from .harness import emulator, make_calendar
from .servers import COMMANDS, serving
from .table import print_goal, print_table
from .wsgi import DJANGO_INSERT_EVENT_TYPE, DOOR_PATH, FLOOR_EVENT_TYPE, RAW_PATH

WARM_UP = 50
#: Requests per target, server and concurrency, sent in rounds that alternate targets: short
#: rounds, so a burst of commits from elsewhere (the machine's PostgreSQL is shared) lands on
#: every target alike rather than on the one that happened to run then.
REQUESTS = 1_200
ROUNDS = 6
CONCURRENCY = (1, 8)
FLOOR = "raw WSGI app, one INSERT (floor)"
ENDPOINT = "webhook endpoint"
DOOR = "webhook endpoint, WSGI door"
BARE = "bare Django view"
DJANGO_INSERT = "Django view, the floor's INSERT"
TARGETS = {
    FLOOR: RAW_PATH,
    BARE: "/bare/",
    DJANGO_INSERT: "/django-insert/",
    ENDPOINT: "/recall/webhooks/",
    DOOR: DOOR_PATH,
}
#: The targets that are the app's endpoint: each of their deliveries stored and enqueued once.
ENDPOINTS = (ENDPOINT, DOOR)
ROOT = Path(__file__).resolve().parents[1]
#: Goals: each endpoint's rate against the floor's, and its p99 at concurrency 8 on PostgreSQL.
RATE_GOAL = 0.5
P99_GOAL_MS = 10.0


def deliveries(calendar_id: str, count: int) -> list[tuple[str, dict[str, str]]]:
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
        )
        signed.append((body, signed_headers(secret, body)))
    return signed


def load(
    port: int, path: str, concurrency: int, requests: list
) -> tuple[float, list[float], float]:
    """Run the load generator in its own process; (wall seconds, latencies, its CPU seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "requests.json", Path(folder) / "result.json"
        source.write_text(json.dumps(requests))
        command = [sys.executable, "-m", "benchmarks.load", str(port), path, str(concurrency)]
        subprocess.run([*command, str(source), str(target)], cwd=ROOT, check=True)
        result = json.loads(target.read_text())
    if result["failures"]:
        raise AssertionError(result["failures"])
    return result["seconds"], result["latencies"], result["cpu_seconds"]


def percentiles(latencies: list[float]) -> list[float]:
    cuts = statistics.quantiles(latencies, n=100)
    return [cuts[49] * 1000, cuts[98] * 1000]


def measure(server: str, calendar_id: str, database: str, task_file: str) -> dict[int, dict]:
    """{concurrency: {target: (requests/s, p50 ms, p99 ms)}} for one server."""
    environment = {
        "BENCH_DATABASE": database,
        "BENCH_DATABASE_NAME": connection.settings_dict["NAME"],
        "BENCH_TASK_LOG": task_file,
    }
    results: dict[int, dict] = {}
    with serving(server, environment) as port:
        for path in TARGETS.values():
            load(port, path, 2, deliveries(calendar_id, WARM_UP))
        for concurrency in CONCURRENCY:
            seconds = dict.fromkeys(TARGETS, 0.0)
            generator_cpu = 0.0
            latencies: dict[str, list[float]] = {name: [] for name in TARGETS}
            for _ in range(ROUNDS):
                for name, path in TARGETS.items():
                    took, measured, cpu = load(
                        port, path, concurrency, deliveries(calendar_id, REQUESTS // ROUNDS)
                    )
                    seconds[name] += took
                    generator_cpu += cpu
                    latencies[name].extend(measured)
            results[concurrency] = {
                name: (len(latencies[name]) / seconds[name], *percentiles(latencies[name]))
                for name in TARGETS
            }
            print_table(
                f"Webhook ingestion over HTTP, {server}, concurrency {concurrency}, "
                f"{REQUESTS:,} requests per target ({database})",
                ["target", "requests/s", "p50 ms", "p99 ms", "vs floor"],
                [
                    [name, *values, f"{values[0] / results[concurrency][FLOOR][0]:.2f}x"]
                    for name, values in results[concurrency].items()
                ],
            )
            sent = REQUESTS // ROUNDS * ROUNDS * len(TARGETS)
            print(f"The load generator's own CPU: {generator_cpu / sent * 1e6:.0f} µs per request.")
    return results


def check_every_delivery(task_file: str) -> None:
    """Each request to an endpoint (the view, the WSGI door) stored once and enqueued exactly
    once (in one batch task or another); each floor request stored."""
    per_server = WARM_UP + REQUESTS // ROUNDS * ROUNDS * len(CONCURRENCY)
    sent = per_server * len(COMMANDS)
    stored = WebhookDelivery.objects.filter(event_type="calendar.sync_events")
    assert stored.count() == sent * len(ENDPOINTS), (stored.count(), sent * len(ENDPOINTS))
    assert not stored.exclude(status=DeliveryStatus.RECEIVED).exists()
    for event_type in (FLOOR_EVENT_TYPE, DJANGO_INSERT_EVENT_TYPE):
        rows = WebhookDelivery.objects.filter(event_type=event_type).count()
        assert rows == sent, (event_type, rows, sent)
    enqueued = [pk for name, args in task_log.read(task_file) for pk in args[0]]
    expected = sent * len(ENDPOINTS)
    assert len(enqueued) == len(set(enqueued)) == expected, (len(enqueued), len(set(enqueued)))
    assert set(enqueued) == set(stored.values_list("pk", flat=True))
    print(
        f"\nEvery delivery verified, stored once and enqueued exactly once ({sent:,} per target)."
    )


def run(database: str) -> None:
    with emulator() as running:
        calendar = make_calendar(running)
    calendar_id = str(calendar.recall_id)
    with tempfile.TemporaryDirectory() as folder:
        task_file = str(Path(folder) / "enqueued.log")
        results = {server: measure(server, calendar_id, database, task_file) for server in COMMANDS}
        check_every_delivery(task_file)
    for server, by_concurrency in results.items():
        for endpoint in ENDPOINTS:
            print_goals(endpoint, server, database, by_concurrency)


def print_goals(endpoint: str, server: str, database: str, by_concurrency: dict[int, dict]) -> None:
    """The goal lines of one endpoint target (the view, the WSGI door) served by ``server``."""
    ratios = {c: rows[endpoint][0] / rows[FLOOR][0] for c, rows in by_concurrency.items()}
    print_goal(
        f"{endpoint} vs raw INSERT floor, {server} ({database})",
        f">= {RATE_GOAL}x the floor's rate at concurrency 1 and 8",
        all(ratio >= RATE_GOAL for ratio in ratios.values()),
        ", ".join(
            f"{ratio:.2f}x at concurrency {c} ({by_concurrency[c][endpoint][0]:,.0f} vs "
            f"{by_concurrency[c][FLOOR][0]:,.0f} req/s)"
            for c, ratio in ratios.items()
        ),
    )
    if database == "postgres":
        p99 = {name: values[2] for name, values in by_concurrency[8].items()}
        print_goal(
            f"{endpoint} p99 at concurrency 8, {server} ({database})",
            f"<= {P99_GOAL_MS:.0f} ms",
            p99[endpoint] <= P99_GOAL_MS,
            f"{p99[endpoint]:.1f} ms (in the same run, the floor's: {p99[FLOOR]:.1f} ms, the "
            f"bare Django view's: {p99[BARE]:.1f} ms, a Django view doing the floor's INSERT: "
            f"{p99[DJANGO_INSERT]:.1f} ms)",
        )
