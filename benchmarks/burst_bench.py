"""A burst against Recall's rate limits: 500 calendars change in the same minute, each with new
meetings to record, processed by real RQ worker processes sharing one Recall budget.

The emulator enforces Recall's published ``x-throttles`` (a sliding minute per endpoint class) at a
scaled clock (``TIME_SCALE`` emulated seconds per real second), and delivers the signed
``calendar.sync_events`` webhooks over HTTP to the app served by waitress, ``SENDERS`` at a time as
Svix does; ``WORKERS`` ``rqworker`` processes (the app's ``rq_worker.Worker``: no fork per
job), up before the burst starts, do the rest. The app's limits are the defaults (Recall's less
5%), scaled alike.

The minimum possible time is what a perfect client needs against that sliding window: with the
window empty at the start, the k-th call of a class can go at ``floor((k - 1) / limit)`` minutes,
so a class needing ``n`` calls needs ``floor((n - 1) / limit)`` minutes, and the burst the longest
of its classes (calls needed: one bot per new meeting, one listing per page of changes).

Goals: no 429 from the emulator; every calendar mirrored and every bot sent within 1.2x of that
minimum; every delivery processed exactly once; the mirror equal to the emulator's state.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.utils import timezone
from rq import Worker

from django_recall_calendar import budget
from django_recall_calendar.models import (
    CalendarEvent,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)

from .burst_timeline import answered_calls, bot_calls_per_bin, timeline_rows, worker_busy
from .harness import emulator, make_calendar
from .servers import serving
from .settings_burst import RQ_QUEUES
from .table import print_goal, print_table

CALENDARS = 500
MEETINGS = 2  # new meetings to record per calendar
WORKERS = 4
SENDERS = 8  # webhooks in flight at once, as many as waitress has threads
TIME_SCALE = 1  # a scaled minute would be shorter than the burst's webhooks take to send here
PERIOD = 60 // TIME_SCALE
PUBLISHED = {
    budget.EVENT_LISTINGS: 60,
    budget.CALENDAR_LISTINGS: 60,
    budget.BOT_SCHEDULING: 600,
    budget.BOT_V1: 60,
    budget.OTHER: 300,
}
MARGIN = 0.95
GOAL = 1.2
PAGE_SIZE = 100
TIMEOUT = 20 * PERIOD
ROOT = Path(__file__).resolve().parents[1]
QUEUE_URL = RQ_QUEUES["default"]["URL"]  # the workers' Redis (both queues share it)


def scaled_settings(prefix: str) -> dict:
    """The app's settings for the burst: the default limits and waits, on the emulator's clock."""
    return {
        "RATE_LIMITS": {
            name: f"{math.floor(limit * MARGIN)}/{PERIOD}s" for name, limit in PUBLISHED.items()
        },
        "RATE_LIMIT_KEY_PREFIX": prefix,
        "RATE_LIMIT_TASK_WAIT": 2.0 / TIME_SCALE,
        "RATE_LIMIT_WAIT": 5.0 / TIME_SCALE,
    }


def minimum_seconds(calls: dict[str, int]) -> tuple[float, str]:
    """The least real time the calls need under the emulator's sliding minute, and the class
    that decides it."""
    floors = {
        name: ((count - 1) // PUBLISHED[name]) * PERIOD
        for name, count in calls.items()
        if count > 0
    }
    name = max(floors, key=floors.get)
    return float(floors[name]), name


def send_the_burst(running, calendars, now) -> None:
    """Each calendar gets its new meetings and its ``calendar.sync_events``, :data:`SENDERS`
    webhooks in flight at a time (the emulator sends a webhook in the thread that made the
    change, as Svix sends an endpoint's messages concurrently, in no promised order)."""

    def change(index: int) -> None:
        start = now + timedelta(hours=1 + index % 48)
        running.add_event_list(
            str(calendars[index].recall_id),
            [
                {"start_time": (start + timedelta(minutes=45 * n)).isoformat()}
                for n in range(MEETINGS)
            ],
        )

    with ThreadPoolExecutor(SENDERS) as senders:
        list(senders.map(change, range(len(calendars))))


def start_workers(environment: dict[str, str]) -> list[subprocess.Popen]:
    command = [
        *(sys.executable, "-m", "django", "rqworker"),
        *(
            "--job-class",
            "django_tasks_rq.Job",
            "--worker-class",
            "django_recall_calendar.rq_worker.Worker",
        ),
        *("--with-scheduler", "bots", "default"),
    ]
    return [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]


def wait_for_workers(count: int, timeout: float = 120) -> None:
    """Until ``count`` RQ workers wait for jobs (starting them takes seconds on a loaded machine,
    and a job enqueued meanwhile would wait for them, not for the app)."""
    connection = redis.Redis.from_url(QUEUE_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = Worker.all(connection=connection)
        if len(workers) == count and all(w.get_state() == "idle" for w in workers):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} RQ workers not ready after {timeout} s")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_the_burst(running, started: float) -> tuple[float | None, float | None]:
    """Poll until every calendar is mirrored and every new meeting has its bot at Recall; the
    real seconds each took (None: not within TIMEOUT). Prints the progress every 10 s."""
    synced = bots = None
    shown = 0.0
    final = (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)
    expected = CALENDARS * MEETINGS
    while time.perf_counter() - started < TIMEOUT and (synced is None or bots is None):
        time.sleep(0.5)
        elapsed = time.perf_counter() - started
        if synced is None:
            done = not WebhookDelivery.objects.exclude(status__in=final).exists()
            if done and CalendarEvent.objects.count() == expected:
                synced = elapsed
        sent = {r.path for r in running.requests_for("POST", "/bot/") if r.status == 200}
        if bots is None and len(sent) >= expected:  # the log, not a copy of every event
            bots = elapsed
        if elapsed - shown >= 5:
            shown = elapsed
            processed = WebhookDelivery.objects.filter(status__in=final).count()
            waiting = CalendarEvent.objects.filter(bot_retry_at__isnull=False)
            first = waiting.order_by("bot_retry_at").values_list("bot_retry_at", flat=True).first()
            due_in = f", next in {(first - timezone.now()).total_seconds():.0f} s" if first else ""
            print(
                f"  {elapsed:5.0f} s: {processed} deliveries processed, {len(sent)} bots sent, "
                f"{waiting.count()} waiting for the budget{due_in}",
                flush=True,
            )
    return synced, bots


def run(database: str) -> None:
    if database != "postgres":
        print("The burst benchmark needs PostgreSQL (worker processes share its database).")
        return
    try:
        redis.Redis.from_url(QUEUE_URL).ping()
    except redis.RedisError:
        print_goal("burst", "Redis on 127.0.0.1:6379 for RQ", False, "Redis is not running")
        return
    prefix = f"recall-burst-{uuid.uuid4().hex}"
    for db in (11, 12):
        redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}").flushdb()
    with emulator(rate_limits=True, time_scale=TIME_SCALE, unruly=False) as running:
        recall = {**scaled_settings(prefix), "BASE_URL": running.base_url}
        settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, **recall}
        now = timezone.now()
        calendars = [
            make_calendar(
                running,
                f"burst{index}@example.com",
                recording_policy=RecordingPolicy.ALL,
                events_synced_until=now,
            )
            for index in range(CALENDARS)
        ]
        environment = {
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings_burst",
            "BENCH_DATABASE": "postgres",
            "BENCH_DATABASE_NAME": settings.DATABASES["default"]["NAME"],
            "RECALL_CALENDAR_JSON": json.dumps(recall),
            "PYTHONPATH": str(ROOT),
        }
        with serving("waitress", environment) as port:
            running.webhook_url = f"http://127.0.0.1:{port}/recall/webhooks/"
            workers = start_workers(environment)
            try:
                wait_for_workers(WORKERS)  # a fleet is up before its burst
                started, started_wall = time.perf_counter(), time.time()
                send_the_burst(running, calendars, now)
                burst_sent = time.perf_counter() - started
                synced, bots = wait_for_the_burst(running, started)
            finally:
                stop(workers)
        report(running, calendars, burst_sent, synced, bots)
        show_timeline(running, started_wall, max(synced or 0, bots or 0))


def repeated_bot_calls(requests) -> int:
    """Bot calls past the first for the same meeting (Recall deduplicates them: same bot)."""
    paths = [
        r.path for r in requests if r.status == 200 and r.method == "POST" and "/bot/" in r.path
    ]
    return len(paths) - len(set(paths))


def report(running, calendars, burst_sent: float, synced, bots) -> None:
    requests = list(running.requests)
    throttled = sum(1 for r in requests if r.status == 429)
    calls = {name: len(times) for name, times in answered_calls(requests).items()}
    needed = {
        budget.BOT_SCHEDULING: CALENDARS * MEETINGS,
        budget.EVENT_LISTINGS: math.ceil(CALENDARS * MEETINGS / PAGE_SIZE),
    }
    minimum, deciding = minimum_seconds(needed)
    deliveries = WebhookDelivery.objects.filter(event_type="calendar.sync_events")
    sent = [d for d in running.deliveries if d.event == "calendar.sync_events" and d.ok]
    exactly_once = (
        deliveries.count() == len({d.id for d in sent}) == CALENDARS
        and set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
        and set(deliveries.values_list("attempts", flat=True)) == {1}
    )
    remote = running.events
    local = {
        str(recall_id): (str(calendar_recall_id), updated)
        for recall_id, calendar_recall_id, updated in CalendarEvent.objects.values_list(
            "recall_id", "calendar__recall_id", "recall_updated_at"
        )
    }
    mirrored = set(local) == set(remote) and all(
        local[i][0] == e["calendar_id"] and local[i][1].isoformat()[:19] == e["updated_at"][:19]
        for i, e in remote.items()
    )
    with_bots = sum(1 for event in remote.values() if event["bots"])

    rows = [
        ["calendars / new meetings", f"{CALENDARS} / {CALENDARS * MEETINGS}"],
        ["worker processes (RQ)", WORKERS],
        ["Recall minute (real seconds)", PERIOD],
        ["webhooks sent by the emulator in (s)", burst_sent],
        [
            "event listings made (needed)",
            f"{calls.get(budget.EVENT_LISTINGS, 0)} ({needed[budget.EVENT_LISTINGS]})",
        ],
        [
            "bot calls made (needed)",
            f"{calls.get(budget.BOT_SCHEDULING, 0)} ({needed[budget.BOT_SCHEDULING]})",
        ],
        ["  of them repeats for a meeting sent one already", repeated_bot_calls(requests)],
        ["other calls", sum(v for k, v in calls.items() if k not in needed)],
        ["429 answered by the emulator", throttled],
        [f"minimum possible (s, {deciding})", minimum],
        [
            "every calendar mirrored after (s)",
            "not within the timeout" if synced is None else synced,
        ],
        ["every bot sent after (s)", "not within the timeout" if bots is None else bots],
        ["meetings with a bot at Recall", f"{with_bots} of {len(remote)}"],
    ]
    print_table("Burst: 500 calendars in one Recall minute, real RQ workers", ["", "value"], rows)
    done = max(synced or math.inf, bots or math.inf)
    ratio = done / minimum if minimum else math.inf
    print_goal("burst: 429s", "no 429 from the emulator", throttled == 0, f"{throttled}")
    print_goal(
        "burst: time",
        f"every calendar synced and every bot sent within {GOAL}x the minimum possible "
        f"({minimum:.0f} s)",
        ratio <= GOAL,
        f"{done:.1f} s = {ratio:.2f}x",
    )
    print_goal(
        "burst: exactly once",
        "every delivery stored and processed once",
        exactly_once,
        f"{deliveries.count()} deliveries of {len(sent)} sent",
    )
    print_goal(
        "burst: final state",
        "the mirror equals the emulator (events, calendars, updated_at; a bot on every meeting)",
        mirrored and with_bots == len(remote),
        f"{len(local)} local, {len(remote)} at Recall, {with_bots} with a bot",
    )


def show_timeline(running, started: float, done: float) -> None:
    """When each kind of work came (s after the burst started), and how busy the workers were."""
    print_table(
        "Burst timeline (s after the first webhook was sent)",
        ["", "first", "last"],
        timeline_rows(running, started, math.floor(PUBLISHED[budget.BOT_SCHEDULING] * MARGIN)),
    )
    print(f"bot calls per 10 s: {bot_calls_per_bin(running, started)}")
    print(f"RQ workers: {worker_busy(QUEUE_URL, ['bots', 'default'], started, started + done)}")
