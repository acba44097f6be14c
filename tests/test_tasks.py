"""tasks.py: configured backend and queue, deferred retries, the fallback without a framework."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from importlib import import_module
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from django_recall_calendar import tasks

REPO = Path(__file__).resolve().parents[1]
BACKENDS = f"{django_settings.TASKS_MODULE}.backends"


@pytest.fixture
def queued(settings):
    """A backend that keeps tasks instead of running them, on a queue of its own."""
    settings.TASKS = {
        **settings.TASKS,
        "queued": {"BACKEND": f"{BACKENDS}.dummy.DummyBackend", "QUEUES": ["recall"]},
    }
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TASK_BACKEND": "queued",
        "TASK_QUEUE": "recall",
    }
    backend = import_module(django_settings.TASKS_MODULE).task_backends["queued"]
    yield backend
    backend.results.clear()


def test_enqueue_uses_the_configured_backend_and_queue(queued):
    assert tasks.enqueue(tasks.process_webhook_delivery, 42) is True

    [result] = queued.results
    assert result.task.queue_name == "recall"
    assert result.task.backend == "queued"
    assert result.args == [42]
    assert result.task.name == "process_webhook_delivery"


def test_a_deferring_backend_gets_run_after(queued):
    when = timezone.now() + timedelta(minutes=5)

    assert tasks.supports_defer() is True
    assert tasks.enqueue(tasks.process_webhook_delivery, 7, run_after=when) is True

    assert queued.results[0].task.run_after == when


def test_the_immediate_backend_cannot_defer_so_nothing_is_enqueued():
    ran = []
    job = tasks.InlineTask(ran.append)

    assert tasks.supports_defer() is False
    assert tasks.enqueue(tasks.process_webhook_delivery, 1, run_after=timezone.now()) is False
    assert tasks.enqueue(job, "now") is True
    assert ran == ["now"]


def test_without_a_task_framework_tasks_run_inline():
    """Django 5.2 without the django-tasks backport: the shim runs the function on enqueue()."""
    script = """
import sys
sys.modules["django.tasks"] = None
sys.modules["django_tasks"] = None
import django
django.setup()
from django_recall_calendar import tasks
assert isinstance(tasks.process_webhook_delivery, tasks.InlineTask), tasks.process_webhook_delivery
assert tasks.supports_defer() is False
ran = []
assert tasks.enqueue(tasks.InlineTask(ran.append), "inline") is True
assert ran == ["inline"]
assert tasks.enqueue(tasks.InlineTask(ran.append), "later", run_after=object()) is False
assert ran == ["inline"]
print("ok")
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
