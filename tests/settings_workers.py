"""Settings for the worker processes tests/test_workers.py starts (and for the test process while
it enqueues to them): the suite's settings plus django-tasks-rq and django-tasks-db backends, RQ
on a Redis database of its own, and the RECALL_CALENDAR the test passes as JSON (the emulator,
the shared budget's store)."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS, RECALL_CALENDAR, TASKS

RQ_URL = os.environ.get("RQ_URL", "redis://127.0.0.1:6379/13")

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq", "django_tasks_rq", "django_tasks_db"]
TASKS = {
    **TASKS,
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]},
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
RQ_QUEUES = {"default": {"URL": RQ_URL}}
RECALL_CALENDAR = {**RECALL_CALENDAR, **json.loads(os.environ.get("RECALL_CALENDAR_JSON", "{}"))}
# Connections kept between jobs with a health check, as a production deployment configures them
# (test_rq_workers_go_on_after_the_database_dropped_their_connections drops them).
DATABASES = {"default": {**DATABASES["default"], "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}}
