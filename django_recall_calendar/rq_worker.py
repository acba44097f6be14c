"""An RQ worker that runs each job in its own process, not a fork, with Django's database
connections looked after between jobs as Django does between requests.

RQ's default ``Worker`` forks a process per job, and the child opens its own database connection:
in the burst benchmark that cost more than the jobs themselves (a batch of 25 bot calls, a webhook
handed back to the sweep), and the first bot calls went out seconds later. RQ's ``SimpleWorker``
runs the job in the worker, but then nothing closes a connection that broke (a database restart)
or outlived ``CONN_MAX_AGE`` — Django does it around each request, django-tasks-db's ``db_worker``
around each task — and every later job would fail on it. This one does it around each job::

    python manage.py rqworker --worker-class django_recall_calendar.rq_worker.Worker \\
        --job-class django_tasks_rq.Job --with-scheduler bots default
"""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections
from rq.worker import SimpleWorker


class Worker(SimpleWorker):
    """``SimpleWorker`` (no fork per job) closing broken or expired connections around each job."""

    def execute_job(self, job: Any, queue: Any) -> Any:
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
