"""Settings for the burst benchmark's processes (itself, its web server, its RQ workers): the
benchmarks' settings with django-tasks-rq on the machine's Redis and the shared Recall budget in
Redis, and the RECALL_CALENDAR the benchmark passes as JSON (the emulator, the scaled limits)."""

import json
import os

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS, RECALL_CALENDAR

REDIS = "redis://127.0.0.1:6379"
INSTALLED_APPS = [*INSTALLED_APPS, "django_rq", "django_tasks_rq"]
TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["bots", "default"]}}
RQ_QUEUES = {"bots": {"URL": f"{REDIS}/11"}, "default": {"URL": f"{REDIS}/11"}}
RECALL_CALENDAR = {
    **RECALL_CALENDAR,
    "RATE_LIMIT_STORAGE": f"{REDIS}/12",
    # RQ has no priorities: the workers take the bot work's queue first (see start_workers).
    "BOT_TASK_QUEUE": "bots",
    **json.loads(os.environ.get("RECALL_CALENDAR_JSON", "{}")),
}
