"""A task backend for the benchmarks that only writes down what was enqueued, one line per task.

The webhook benchmark serves the app from other processes (waitress, gunicorn workers); each of
them appends ``task-name args`` to the file named by ``BENCH_TASK_LOG``, and the parent reads it
to check that every stored delivery was enqueued exactly once. Appending one short line is about
what pushing onto a real queue costs the web process, and far less than Django's DummyBackend,
which copies every result it keeps. Each process opens the file once (as a worker keeps its
connection to a queue) and writes a whole line at a time.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import threading
import uuid
from typing import Any, TextIO

from django.conf import settings
from django.utils import timezone

_tasks = importlib.import_module(settings.TASKS_MODULE)
_base = importlib.import_module(f"{settings.TASKS_MODULE}.backends.base")
_LOCK = threading.Lock()


@functools.cache
def _log() -> TextIO | None:
    """The process's handle on ``BENCH_TASK_LOG``, opened once as a queue's connection would be."""
    path = os.environ.get("BENCH_TASK_LOG")
    return open(path, "a") if path else None


class TaskLogBackend(_base.BaseTaskBackend):
    """Never runs a task; appends each enqueued one to ``BENCH_TASK_LOG`` (if set)."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        log = _log()
        if log is not None:
            line = f"{task.name} {json.dumps(list(args))}\n"
            with _LOCK:
                log.write(line)
                log.flush()
        return _tasks.TaskResult(
            task=task,
            id=uuid.uuid4().hex,
            status=_tasks.TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=list(args),
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )


def read(path: str) -> list[tuple[str, list]]:
    """The (task name, args) of every line written to ``path``."""
    entries = []
    with open(path) as log:
        for line in log:
            name, _, args = line.partition(" ")
            entries.append((name, json.loads(args)))
    return entries
