"""Deliveries processed by a real worker process: django-tasks-db's ``db_worker`` on PostgreSQL.

The test process receives the webhooks and enqueues into the database backend; a separate worker
process (``tests/settings_dbworker.py``) picks the tasks up and talks to the emulator over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from django_recall_calendar.models import (
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    WebhookDelivery,
)
from tests import builders

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.postgres(reason="db_worker needs a database shared with the test"),
    pytest.mark.django_db(transaction=True),
    # The deliveries must reach the endpoint (and queue their tasks) before the worker starts.
    pytest.mark.recall_emulator(unruly=False),
]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def db_backend(settings):
    """The database task backend installed in this process, its tables in the test database."""
    with override_settings(
        INSTALLED_APPS=[*django_settings.INSTALLED_APPS, "django_tasks_db"],
        TASKS={**django_settings.TASKS, "db": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
    ):
        call_command("migrate", "django_tasks_database", verbosity=0)
        settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TASK_BACKEND": "db"}
        yield
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.all().delete()


def run_worker(recall_settings: dict) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_dbworker",
        "DATABASE_URL": database_url(),
        "RECALL_CALENDAR_JSON": json.dumps(recall_settings),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "django", "db_worker", "--backend", "db", "--batch"]
    return subprocess.run(
        [*command, "--no-startup-delay", "--no-reload"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_db_worker_process_processes_the_deliveries(recall_emulator, db_backend, settings):
    from django_tasks_db.models import DBTaskResult

    calendar = builders.recall_calendar(recall_emulator, "ada@example.com", connect=False)
    recall_emulator.connect_calendar(str(calendar.recall_id), email="ada@example.com")
    events = recall_emulator.add_events(str(calendar.recall_id), 3)

    assert [d.status for d in recall_emulator.deliveries] == [200, 200]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"received"}
    assert DBTaskResult.objects.count() == 2

    done = run_worker(settings.RECALL_CALENDAR)

    assert done.returncode == 0, done.stderr
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {
        DeliveryStatus.PROCESSED
    }
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.CONNECTED
    assert calendar.platform_email == "ada@example.com"
    assert {str(e.recall_id) for e in CalendarEvent.objects.all()} == {e["id"] for e in events}
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
