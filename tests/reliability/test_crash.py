"""A worker killed in the middle of processing a delivery: the delivery is processed later, once.

The worker is a real process (``manage.py recall_webhooks --replay ID``) on a database shared with
the test: the test database on PostgreSQL, a database file of its own on SQLite. An emulator stall
on the events listing holds the worker inside the sync until it is SIGKILLed. Its claim then blocks
other workers until it is older than ``WEBHOOK_CLAIM_TIMEOUT`` (15 minutes by default; one second
for the recovering worker here); ``recall_webhooks --retry-failed`` then takes it over and finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, connections
from django.db.utils import load_backend
from django.utils import timezone

from django_recall_calendar.models import Calendar, CalendarEvent, DeliveryStatus, WebhookDelivery

REPO = Path(__file__).resolve().parents[2]
EVENTS_PATH = "/api/v2/calendar-events/"
STALL_SECONDS = 60
SHORT_CLAIM_TIMEOUT = 1

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]


@dataclass
class SharedDatabase:
    alias: str
    url: str


def postgres_url(db: dict) -> str:
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def shared_db(tmp_path):
    """A database the test and its worker processes both reach, as (alias, DATABASE_URL)."""
    if connection.vendor == "postgresql":
        yield SharedDatabase("default", postgres_url(connection.settings_dict))
        return
    # The suite's SQLite database lives in this process's memory: use a file of our own. Its
    # connection is registered without a settings entry, which Django's test case treats as a
    # dynamically created connection and leaves alone.
    alias, path = "shared_file", tmp_path / "shared.sqlite3"
    engine = {"ENGINE": "django.db.backends.sqlite3"}
    configured = connections.configure_settings(
        {"default": engine, alias: {**engine, "NAME": str(path)}}
    )[alias]
    wrapper = load_backend(configured["ENGINE"]).DatabaseWrapper(configured, alias)
    setattr(connections._connections, alias, wrapper)
    try:
        call_command("migrate", database=alias, verbosity=0)
        yield SharedDatabase(alias, f"sqlite:///{path}")
    finally:
        wrapper.close()
        del connections[alias]


def manage(
    shared: SharedDatabase, emulator, *args: str, **recall_settings: object
) -> subprocess.Popen:
    """Start ``manage.py recall_webhooks ARGS`` on the shared database, talking to the emulator."""
    recall = {
        "BASE_URL": emulator.base_url,
        "API_KEY": emulator.api_key,
        "WEBHOOK_SECRET": emulator.webhook_secret,
        "TIMEOUT": STALL_SECONDS * 2,  # the stall must hold the worker, not time it out
        **recall_settings,
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings",
        "DATABASE_URL": shared.url,
        "RECALL_CALENDAR_JSON": json.dumps(recall),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "django", "recall_webhooks", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_worker_s_delivery_is_processed_later_exactly_once(recall_emulator, shared_db):
    emulator, alias = recall_emulator, shared_db.alias
    user = get_user_model().objects.db_manager(alias).create_user("crash")
    remote = emulator.create_calendar(oauth_email="crash@example.com")
    emulator.connect_calendar(remote["id"])
    calendar = Calendar.objects.using(alias).create(
        user=user, recall_id=remote["id"], platform=remote["platform"]
    )
    events = emulator.add_events(remote["id"], 30)
    sent = emulator.deliveries[-1]
    assert sent.event == "calendar.sync_events"
    delivery = WebhookDelivery.objects.using(alias).create(
        message_id=sent.id,
        event_type=sent.event,
        payload=sent.payload,
        calendar=calendar,
        calendar_recall_id=remote["id"],
    )
    rows = WebhookDelivery.objects.using(alias).filter(pk=delivery.pk)
    emulator.inject_fault("stall", path=EVENTS_PATH, seconds=STALL_SECONDS)

    worker = manage(shared_db, emulator, "--replay", str(delivery.pk))
    try:
        wait_for(lambda: emulator.requests_for("GET", EVENTS_PATH))
        assert rows.values_list("status", "attempts").get() == (DeliveryStatus.PROCESSING, 1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert not CalendarEvent.objects.using(alias).exists()

    # A fresh claim may be a live worker's: nobody takes it over yet.
    assert "No delivery is due." in finish(manage(shared_db, emulator, "--retry-failed"))
    assert rows.values_list("status", flat=True).get() == DeliveryStatus.PROCESSING
    assert len(emulator.requests_for("GET", EVENTS_PATH)) == 1

    # Once the claim is older than the timeout, the next --retry-failed finishes the delivery.
    claimed_at = rows.values_list("claimed_at", flat=True).get()
    wait_for(lambda: timezone.now() - claimed_at > timedelta(seconds=SHORT_CLAIM_TIMEOUT))
    recovery = manage(
        shared_db, emulator, "--retry-failed", WEBHOOK_CLAIM_TIMEOUT=SHORT_CLAIM_TIMEOUT
    )
    out = finish(recovery)
    assert "1 processed" in out
    processed = rows.get()
    assert (processed.status, processed.attempts) == (DeliveryStatus.PROCESSED, 2)
    assert processed.processed_at is not None
    stored = set(CalendarEvent.objects.using(alias).values_list("recall_id", flat=True))
    assert {str(recall_id) for recall_id in stored} == {event["id"] for event in events}

    # Processed once: nothing is due any more, and Recall was listed once more, not twice.
    assert "No delivery is due." in finish(manage(shared_db, emulator, "--retry-failed"))
    assert len(emulator.requests_for("GET", EVENTS_PATH)) == 2
    assert rows.values_list("attempts", flat=True).get() == 2
