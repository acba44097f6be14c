"""One Recall budget: every call takes a token from its endpoint class's bucket first.

The buckets are shared by every process: two processes racing for one bucket in Redis or in the
database together take exactly its size, never more, and the emulator sees only those calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from django_recall_calendar import budget, tasks
from django_recall_calendar.budget import BudgetExhausted
from django_recall_calendar.client import RecallClient
from django_recall_calendar.exceptions import RecallRateLimitError
from django_recall_calendar.models import DeliveryStatus
from tests import builders

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/14"


def limited(settings, **rates: str) -> None:
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "RATE_LIMITS": rates}


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/api/v2/calendar-events/", budget.EVENT_LISTINGS),
        ("GET", "/api/v2/calendars/", budget.CALENDAR_LISTINGS),
        ("POST", f"/api/v2/calendar-events/{uuid.uuid4()}/bot/", budget.BOT_SCHEDULING),
        ("DELETE", f"/api/v2/calendar-events/{uuid.uuid4()}/bot/", budget.BOT_SCHEDULING),
        ("POST", "/api/v1/bot/", budget.BOT_V1),
        ("GET", f"/api/v2/calendars/{uuid.uuid4()}/", budget.OTHER),
        ("GET", f"/api/v2/calendar-events/{uuid.uuid4()}/", budget.OTHER),
        ("POST", "/api/v2/calendars/", budget.OTHER),
    ],
)
def test_each_call_draws_from_its_x_throttles_class(method, path, name):
    assert budget.endpoint_class(method, path) == name


@pytest.mark.parametrize(
    ("text", "calls", "seconds"),
    [("60/min", 60, 60), ("5/10s", 5, 10), ("600/minute", 600, 60), ("2 / 3 h", 2, 10800)],
)
def test_rates_read_like_recalls_documentation(text, calls, seconds):
    item = budget.parse_rate(text)
    assert (item.amount, item.get_expiry()) == (calls, seconds)


def test_a_call_past_the_budget_is_refused_before_it_reaches_recall(recall_emulator, settings, db):
    limited(settings, calendar_listings="2/1h")
    client = RecallClient.from_settings()
    assert list(client.list_calendars()) == []
    assert list(client.list_calendars()) == []
    with budget.waiting_at_most(0), pytest.raises(BudgetExhausted) as refused:
        list(client.list_calendars())

    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == 2
    assert refused.value.endpoint_class == budget.CALENDAR_LISTINGS
    assert isinstance(refused.value, RecallRateLimitError)  # the doors' 429 handling applies
    assert timezone.now() + timedelta(minutes=59) < refused.value.retry_at
    # Other classes keep their own tokens.
    client.retrieve_calendar(builders.recall_calendar(recall_emulator).recall_id)


def test_a_caller_that_may_wait_gets_its_call_once_a_token_frees(recall_emulator, settings):
    limited(settings, calendar_listings="1/1s")
    client = RecallClient.from_settings()
    with budget.waiting_at_most(5):
        for _ in range(3):
            list(client.list_calendars())
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == 3


def test_a_429_that_still_comes_is_honoured_and_counted(recall_emulator):
    recall_emulator.inject_fault("429", 2, path="/api/v2/calendars/", retry_after=0)
    client = RecallClient.from_settings()

    assert list(client.list_calendars()) == []

    rows = {row.name: row for row in budget.state()}
    assert rows[budget.CALENDAR_LISTINGS].throttled == 2
    assert rows[budget.CALENDAR_LISTINGS].calls == 3  # each retry took its own token
    assert rows[budget.CALENDAR_LISTINGS].used == 3
    assert rows[budget.EVENT_LISTINGS].used == 0


def test_recall_sync_reports_the_calls_it_made(recall_emulator, db):
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_events(str(calendar.recall_id), 2)
    out = []

    class Out:
        def write(self, text):
            out.append(text)

        def flush(self):
            pass

    call_command("recall_sync", stdout=Out())

    assert "Recall calls: 2, 1 event_listings, 1 other." in "".join(out)


@pytest.mark.recall_emulator(webhooks=False)
def test_a_task_that_would_wait_is_deferred_and_frees_its_worker(recall_emulator, db, settings):
    """The delivery goes back to ``received`` due when a token frees, its attempt not counted,
    and its task is enqueued again for that time instead of holding the worker."""
    settings.TASKS = {
        **settings.TASKS,
        "later": {"BACKEND": f"{settings.TASKS_MODULE}.backends.dummy.DummyBackend"},
    }
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TASK_BACKEND": "later",
        "RATE_LIMITS": {"event_listings": "1/1h"},
    }
    calendar = builders.recall_calendar(recall_emulator)
    list(RecallClient.from_settings().list_calendar_events())  # the hour's only listing
    delivery = builders.delivery(calendar, status=DeliveryStatus.RECEIVED)

    status = tasks.run_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert status == delivery.status == DeliveryStatus.RECEIVED
    assert delivery.attempts == 0
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=59)
    assert "budget" in delivery.last_error
    [result] = tasks._task_backends["later"].results
    assert result.task.func is tasks.process_webhook_delivery.func
    assert result.args == [delivery.pk]
    assert result.task.run_after == delivery.next_attempt_at
    assert [row.deferred for row in budget.state() if row.name == budget.EVENT_LISTINGS] == [1]


# -- shared by processes ---------------------------------------------------------------------------

RACER = """
import django, json, os, sys
django.setup()
from django_recall_calendar import budget
from django_recall_calendar.client import RecallClient
client, taken = RecallClient.from_settings(), 0
sys.stdin.read()  # both start together
with budget.waiting_at_most(0):
    for _ in range(int(os.environ["ATTEMPTS"])):
        try:
            list(client.list_calendars())
            taken += 1
        except budget.BudgetExhausted:
            pass
print(taken)
"""


def race(recall_settings: dict, attempts: int, extra_env: dict | None = None) -> list[int]:
    """Two processes each try ``attempts`` calendar listings at once; the calls each made."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_budget",
        "RECALL_CALENDAR_JSON": json.dumps(recall_settings),
        "ATTEMPTS": str(attempts),
        "PYTHONPATH": str(REPO),
        **(extra_env or {}),
    }
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate("go", timeout=120) for racer in racers]
    for racer, (_, stderr) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, stderr
    return [int(stdout.strip()) for stdout, _ in outputs]


@pytest.fixture
def redis_store():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379 (the shared budget's store)")
    prefix = f"recall-test-{uuid.uuid4().hex}"
    yield prefix
    server = redis.Redis.from_url(REDIS_URL)
    for key in server.scan_iter(f"{prefix}:*"):
        server.delete(key)


def test_two_processes_never_exceed_the_budget_together_in_redis(recall_emulator, redis_store):
    recall = {
        **recall_emulator_settings(recall_emulator),
        "RATE_LIMIT_STORAGE": REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": redis_store,
        "RATE_LIMITS": {"calendar_listings": "15/1h"},
    }
    taken = race(recall, attempts=12)

    assert sum(taken) == 15
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == 15


@pytest.mark.postgres(reason="two processes share the database store only on a real server")
@pytest.mark.django_db(transaction=True)
def test_two_processes_never_exceed_the_budget_together_in_the_database(recall_emulator):
    recall = {
        **recall_emulator_settings(recall_emulator),
        "RATE_LIMIT_STORAGE": "database://",
        "RATE_LIMITS": {"calendar_listings": "15/1h"},
    }
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    taken = race(recall, attempts=12, extra_env={"DATABASE_URL": url})

    assert sum(taken) == 15
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == 15


def recall_emulator_settings(emulator) -> dict:
    return {"BASE_URL": emulator.base_url, "API_KEY": emulator.api_key}


def test_the_admin_shows_the_budget_above_the_deliveries(recall_emulator, admin_client, settings):
    limited(settings, event_listings="1/1h", calendar_listings="57/min")
    client = RecallClient.from_settings()
    list(client.list_calendar_events())
    recall_emulator.inject_fault("429", 1, path="/api/v2/calendars/", retry_after=0)
    list(client.list_calendars())
    calendar = builders.recall_calendar(recall_emulator, connect=False)
    deferred = builders.delivery(calendar, status=DeliveryStatus.RECEIVED)
    with budget.waiting_at_most(0):
        tasks.run_delivery(deferred.pk)

    page = admin_client.get("/admin/recall_calendar/webhookdelivery/").content.decode()

    text = " ".join(page.split())
    # event listings: the hour's one token taken, one call, no 429, one task deferred
    assert "<td>1/3600s</td><td>1</td> <td>1</td><td>0</td><td>1</td>" in text
    # calendar listings: two calls (the first answered 429), nothing deferred
    assert "<td>57/60s</td><td>2</td> <td>2</td><td>1</td><td>0</td>" in text
    assert "1 delivery waits for the budget." in page
