"""Settings for the django-tasks-db worker process that tests/test_webhook_worker.py starts.

The test suite's settings plus the database task backend under the alias ``db`` (the alias the test
process enqueues to), and the emulator's RECALL_CALENDAR passed in by the test as JSON.
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, RECALL_CALENDAR, TASKS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {**TASKS, "db": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
RECALL_CALENDAR = {
    **RECALL_CALENDAR,
    **json.loads(os.environ.get("RECALL_CALENDAR_JSON", "{}")),
    "TASK_BACKEND": "db",
}
