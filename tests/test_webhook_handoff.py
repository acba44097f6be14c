"""tasks.Handoff: deliveries stored while another request enqueues go out with that request.

The webhook endpoint hands each stored delivery to the task queue once its answer is sent; under
load one push must carry every delivery waiting in the process, and none may be left behind or
sent twice.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from django_recall_calendar import tasks
from django_recall_calendar.models import WebhookDelivery
from tests.webhook_doors import envelope, sign


class BlockingQueue:
    """A task queue whose first push waits until the test lets it through."""

    def __init__(self) -> None:
        self.pushed: list[list[int]] = []
        self.pushing = threading.Event()
        self.let_through = threading.Event()

    def push(self, batch: list[int]) -> None:
        if not self.pushed:
            self.pushing.set()
            self.let_through.wait(timeout=30)
        self.pushed.append(batch)


def test_deliveries_stored_during_a_push_go_out_together_in_the_next_one():
    queue = BlockingQueue()
    handoff = tasks.Handoff(queue.push)
    first = threading.Thread(target=handoff.add, args=([1],))
    first.start()
    assert queue.pushing.wait(timeout=30)

    handoff.add([2])  # returns at once: the request pushing now takes it
    handoff.add([3])
    queue.let_through.set()
    first.join(timeout=30)

    assert queue.pushed == [[1], [2, 3]]


def test_a_lone_delivery_goes_out_at_once():
    pushed: list[list[int]] = []
    handoff = tasks.Handoff(pushed.append)

    handoff.add([7])
    handoff.add([8])

    assert pushed == [[7], [8]]


def test_a_failed_push_is_logged_and_the_next_delivery_still_goes_out(caplog):
    pushed: list[list[int]] = []

    def push(batch: list[int]) -> None:
        if batch == [1]:
            raise ConnectionError("queue down")
        pushed.append(batch)

    handoff = tasks.Handoff(push)
    handoff.add([1])  # its row stays received: recall_webhooks --retry-failed takes it
    handoff.add([2])

    assert pushed == [[2]]
    assert "Could not enqueue webhook deliveries [1]" in caplog.text


# With WEBHOOK_HANDOFF_DELAY > 0 a request only adds its deliveries; a thread of the process pushes
# whatever waits, at most every delay. No test times anything: each waits for the outcome.

LINGER = 0.001
TIMEOUT = 30


class RecordingQueue:
    """A task queue that keeps each push; a test waits until the deliveries it expects are in."""

    def __init__(self) -> None:
        self.pushed: list[list[int]] = []
        self.changed = threading.Condition()

    def push(self, batch: list[int]) -> None:
        with self.changed:
            self.pushed.append(batch)
            self.changed.notify_all()

    def wait_for(self, count: int) -> bool:
        """Whether ``count`` deliveries were pushed (in any number of pushes) within the timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.ids()) >= count, timeout=TIMEOUT)

    def ids(self) -> list[int]:
        return [pk for batch in self.pushed for pk in batch]


def test_a_backlog_goes_out_in_tasks_of_at_most_the_batch_size():
    queue = BlockingQueue()
    handoff = tasks.Handoff(queue.push, batch_size=3)
    first = threading.Thread(target=handoff.add, args=([1],))
    first.start()
    assert queue.pushing.wait(timeout=30)

    for delivery_id in range(2, 10):  # the queue hangs meanwhile: they wait
        handoff.add([delivery_id])
    queue.let_through.set()
    first.join(timeout=30)

    assert queue.pushed == [[1], [2, 3, 4], [5, 6, 7], [8, 9]]


def test_while_the_queue_hangs_a_bounded_number_wait_and_the_rest_are_logged_once(caplog):
    queue = BlockingQueue()
    handoff = tasks.Handoff(queue.push, max_waiting=5)
    first = threading.Thread(target=handoff.add, args=([1],))
    first.start()
    assert queue.pushing.wait(timeout=30)

    for delivery_id in range(2, 12):  # 2-6 wait; 7-11 are left to --retry-failed
        handoff.add([delivery_id])
    queue.let_through.set()
    first.join(timeout=30)

    assert queue.pushed == [[1], [2, 3, 4, 5, 6]]
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and "recall_webhooks --retry-failed" in errors[0]
    handoff.add([12])  # the queue answers again: deliveries go out as before
    assert queue.pushed[-1] == [12]


def test_a_burst_from_many_requests_goes_out_exactly_once_in_few_pushes():
    """The requests return without pushing, even while the queue is stuck; the thread's next push
    takes everything stored meanwhile."""
    queue = RecordingQueue()
    all_added = threading.Event()

    def stuck_until_all_added(batch: list[int]) -> None:
        all_added.wait(timeout=TIMEOUT)
        queue.push(batch)

    handoff = tasks.Handoff(stuck_until_all_added, lambda: LINGER)
    threads_before = _handoff_threads()
    requests = [
        threading.Thread(
            target=lambda first=first: [handoff.add([pk]) for pk in range(first, first + 25)]
        )
        for first in range(0, 200, 25)
    ]
    for request in requests:
        request.start()
    for request in requests:
        request.join(timeout=TIMEOUT)
    assert not any(request.is_alive() for request in requests)
    all_added.set()

    assert queue.wait_for(200)
    assert sorted(queue.ids()) == list(range(200))  # each once
    assert len(queue.pushed) <= 2  # the stuck push's, and one for all the rest
    assert _handoff_threads() == threads_before + 1  # one for the process, whatever the requests


def _handoff_threads() -> int:
    return sum(thread.name == "recall-calendar-handoff" for thread in threading.enumerate())


def test_a_lone_delivery_goes_out_without_another_request():
    queue = RecordingQueue()
    handoff = tasks.Handoff(queue.push, lambda: LINGER)

    handoff.add([7])

    assert queue.wait_for(1)
    assert queue.pushed == [[7]]


def test_a_failed_lingering_push_is_logged_and_the_next_still_goes(caplog):
    queue = RecordingQueue()
    failed = threading.Event()

    def push(batch: list[int]) -> None:
        if batch == [1]:
            failed.set()
            raise ConnectionError("queue down")
        queue.push(batch)

    handoff = tasks.Handoff(push, lambda: LINGER)
    handoff.add([1])  # its row stays received: recall_webhooks --retry-failed takes it
    assert failed.wait(timeout=TIMEOUT)
    handoff.add([2])

    assert queue.wait_for(1)
    assert queue.pushed == [[2]]
    assert "Could not enqueue webhook deliveries [1]" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only")
def test_a_forked_child_pushes_its_own_deliveries_and_not_its_parents():
    """A server forks its workers after import: each must start its own thread, and what waits in
    the parent at the fork is the parent's to push."""
    queue = RecordingQueue()
    delay = [3600.0]  # the parent's delivery waits through the fork
    handoff = tasks.Handoff(queue.push, lambda: delay[0])
    handoff.add([1])
    read, write = os.pipe()
    with warnings.catch_warnings():  # the parent has threads: fine here, the child uses none
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            delay[0] = LINGER
            handoff.add([2])
            os.write(write, json.dumps(queue.pushed if queue.wait_for(1) else None).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as report:
        pushed_in_child = json.loads(report.read() or "null")
    os.waitpid(child, 0)

    assert pushed_in_child == [[2]]
    assert queue.pushed == []  # the parent's still lingers


def test_a_process_exiting_pushes_what_waits():
    """The exit's flush (``atexit``): a process stopped while deliveries linger still pushes them
    (one killed outright leaves them to ``recall_webhooks --retry-failed``)."""
    script = (
        "import django; django.setup()\n"
        "from django_recall_calendar import tasks\n"
        "handoff = tasks.Handoff(lambda batch: print('pushed', batch), lambda: 3600)\n"
        "handoff.add([1, 2]); handoff.add([3])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (done.returncode, done.stdout) == (0, "pushed [1, 2, 3]\n"), done.stderr


@pytest.mark.django_db
def test_the_threads_database_connection_is_closed_after_each_push_as_after_a_request():
    """A database queue (django-tasks-db) pushes through the thread's own connection: without
    ``CONN_MAX_AGE`` it must not stay open (nor a broken one be reused) until the process ends."""
    if connection.vendor == "sqlite":
        pytest.skip("Django never closes the connection of an in-memory SQLite test database")
    queue = RecordingQueue()
    closed_before_push: list[bool] = []

    def push_through_the_database(batch: list[int]) -> None:
        closed_before_push.append(connection.connection is None)  # the thread's connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        queue.push(batch)

    handoff = tasks.Handoff(push_through_the_database, lambda: LINGER)
    handoff.add([1])
    assert queue.wait_for(1)
    handoff.add([2])
    assert queue.wait_for(2)

    assert closed_before_push == [True, True]


_dummy = importlib.import_module(f"{django_settings.TASKS_MODULE}.backends.dummy")


class EveryThreadsDummyBackend(_dummy.DummyBackend):
    """Keeps what any thread enqueued in one list: Django builds a task backend per thread, and the
    hand-off's thread enqueues on its own."""

    enqueued: list[tuple[str, list[int]]] = []

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.enqueued.append((task.name, args[0]))
        return super().enqueue(task, args, kwargs)


@pytest.mark.django_db
def test_deliveries_through_a_door_are_each_enqueued_once_by_the_thread(
    door, secret, settings, django_capture_on_commit_callbacks
):
    backend = f"{__name__}.{EveryThreadsDummyBackend.__name__}"
    settings.TASKS = {**settings.TASKS, "shared": {"BACKEND": backend}}
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TASK_BACKEND": "shared",
        "WEBHOOK_HANDOFF_DELAY": LINGER,
    }
    EveryThreadsDummyBackend.enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            body = envelope("calendar.sync_events")
            assert door.post(body, sign(body)).json() == {"status": "received"}
    stored = sorted(WebhookDelivery.objects.values_list("pk", flat=True))

    deadline = time.monotonic() + TIMEOUT
    while len(_enqueued()) < len(stored) and time.monotonic() < deadline:
        time.sleep(LINGER)

    assert sorted(_enqueued()) == stored
    assert {name for name, _ in EveryThreadsDummyBackend.enqueued} == {"process_webhook_deliveries"}


def _enqueued() -> list[int]:
    return [pk for _, batch in list(EveryThreadsDummyBackend.enqueued) for pk in batch]
