"""The processing on a real distributed engine: several worker processes of django-tasks-rq (RQ on
the machine's Redis) or django-tasks-db, started and stopped by the test, sharing one database,
one Recall budget (in Redis) and an emulator that enforces Recall's rate limits.

The test process receives the (unruly: held, duplicated, reordered) webhooks and enqueues; only the
workers process. At the end every delivery was processed exactly once and the mirror equals
Recall: each calendar's events, and a bot on every meeting its policy wants.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from django_recall_calendar import budget
from django_recall_calendar.models import (
    CalendarEvent,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)
from tests import builders

REPO = Path(__file__).resolve().parents[1]
RQ_URL = "redis://127.0.0.1:6379/13"
BUDGET_URL = "redis://127.0.0.1:6379/14"
WORKERS = 3

pytestmark = [
    pytest.mark.postgres(reason="worker processes need a database shared with the test"),
    pytest.mark.django_db(transaction=True),
]


def _redis_or_skip() -> redis.Redis:
    server = redis.Redis.from_url(RQ_URL)
    try:
        server.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379 (RQ and the shared budget)")
    return server


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class Pool:
    """Worker processes of one engine, started together and stopped (SIGTERM, then SIGKILL)."""

    def __init__(self, command: list[str], env: dict[str, str], count: int) -> None:
        self.logs = [Path(f"/tmp/recall-worker-{uuid.uuid4().hex}.log") for _ in range(count)]
        self.processes = [
            subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for log in self.logs
        ]

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for log in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self.logs:
            log.unlink(missing_ok=True)


ENGINES = {
    "rq": [
        "rqworker",
        "--worker-class",
        "django_recall_calendar.rq_worker.Worker",
        "--job-class",
        "django_tasks_rq.Job",
        "--with-scheduler",
        "default",
    ],
    "db": [
        "db_worker",
        "--backend",
        "db",
        "--no-startup-delay",
        "--no-reload",
        "--interval",
        "0.1",
    ],
}


@pytest.fixture(params=sorted(ENGINES))
def engine(request, settings, recall_emulator):
    """The test process enqueues on the engine; WORKERS processes of it do the work."""
    name = request.param
    queues = _redis_or_skip()
    queues.flushdb()
    prefix = f"recall-workers-{uuid.uuid4().hex}"
    recall = {
        "BASE_URL": recall_emulator.base_url,
        "API_KEY": recall_emulator.api_key,
        "WEBHOOK_SECRET": recall_emulator.webhook_secret,
        "TASK_BACKEND": name,
        "RATE_LIMIT_STORAGE": BUDGET_URL,
        "RATE_LIMIT_KEY_PREFIX": prefix,
        "RATE_LIMITS": {},  # Recall's published limits less the margin: what the emulator enforces
        "RATE_LIMIT_TASK_WAIT": 1.0,
    }
    with override_settings(
        INSTALLED_APPS=[
            *django_settings.INSTALLED_APPS,
            "django_rq",
            "django_tasks_rq",
            "django_tasks_db",
        ],
        TASKS={
            **django_settings.TASKS,
            "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]},
            "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
        },
        RQ_QUEUES={"default": {"URL": RQ_URL}},
    ):
        call_command("migrate", "django_tasks_database", verbosity=0)
        settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, **recall}
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_workers",
            "DATABASE_URL": database_url(),
            "RECALL_CALENDAR_JSON": json.dumps(recall),
            "RQ_URL": RQ_URL,
            "PYTHONPATH": str(REPO),
        }
        pool = Pool([sys.executable, "-m", "django", *ENGINES[name]], env, WORKERS)
        try:
            yield pool
        finally:
            pool.stop()
            queues.flushdb()
            budget_keys = redis.Redis.from_url(BUDGET_URL)
            for key in budget_keys.scan_iter(f"{prefix}:*"):
                budget_keys.delete(key)
            if name == "db":
                from django_tasks_db.models import DBTaskResult

                DBTaskResult.objects.all().delete()


def settled(emulator, pool: Pool, timeout: float = 120.0) -> None:
    """Wait until the emulator sent every webhook, no delivery is left to process and the bot
    batches the syncs handed to the workers are done (every meeting has its bot)."""
    deadline = time.monotonic() + timeout
    emulator.settle(timeout)
    final = (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)
    while time.monotonic() < deadline:
        assert pool.alive() == WORKERS, pool.output()
        processed = not WebhookDelivery.objects.exclude(status__in=final).exists()
        if processed and all(event["bots"] for event in emulator.events.values()):
            return
        time.sleep(0.2)
    left = list(WebhookDelivery.objects.exclude(status__in=final).values("status", "last_error"))
    raise AssertionError(f"deliveries left: {left}\n{pool.output()}")


def test_several_worker_processes_mirror_a_burst_exactly_once(recall_emulator, engine):
    calendars = []
    for index in range(8):
        calendar = builders.recall_calendar(recall_emulator, f"worker{index}@example.com")
        calendar.recording_policy = RecordingPolicy.ALL
        calendar.save()
        calendars.append(calendar)
    for calendar in calendars:  # a burst: every calendar changes at once
        recall_emulator.add_events(str(calendar.recall_id), 3)

    settled(recall_emulator, engine)

    deliveries = WebhookDelivery.objects.all()
    sent = {d.id for d in recall_emulator.deliveries}
    assert {d.message_id for d in deliveries} == sent  # each stored once, duplicates refused
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    assert set(deliveries.values_list("attempts", flat=True)) == {1}  # processed once each
    remote = recall_emulator.events
    local = {str(e.recall_id): e for e in CalendarEvent.objects.all()}
    assert set(local) == set(remote)
    for recall_id, event in remote.items():
        assert local[recall_id].calendar.recall_id == uuid.UUID(event["calendar_id"])
        assert event["bots"], f"meeting {recall_id} has no bot at Recall"
    throttled = [r for r in recall_emulator.requests if r.status == 429]
    assert throttled == []
    assert budget.storage_uri() == BUDGET_URL


@pytest.mark.parametrize("engine", ["rq"], indirect=True)
def test_rq_workers_go_on_after_the_database_dropped_their_connections(recall_emulator, engine):
    """The app's RQ worker runs jobs without forking, so its database connection outlives a job;
    one the database dropped meanwhile (a restart, a failover) is replaced before the next job,
    not failed on (RQ's SimpleWorker alone would fail every later job)."""
    calendar = builders.recall_calendar(recall_emulator, "restart@example.com")
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    recall_emulator.add_events(str(calendar.recall_id), 2)
    settled(recall_emulator, engine)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchall(), "the workers held no connection to drop"
    recall_emulator.add_events(str(calendar.recall_id), 2)
    settled(recall_emulator, engine)

    deliveries = WebhookDelivery.objects.all()
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    assert set(deliveries.values_list("attempts", flat=True)) == {1}
    assert CalendarEvent.objects.count() == len(recall_emulator.events) == 4
