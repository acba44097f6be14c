"""Background tasks, through Django's task framework so the host picks the engine that runs them.

Django 6 ships ``django.tasks``; on Django 5.2 the ``django-tasks`` backport provides the same API.
Without either, tasks run inline when enqueued (a tiny shim with the same ``.enqueue()``), so the
app still works, only without a worker. The backend alias and queue come from the
``TASK_BACKEND`` and ``TASK_QUEUE`` settings, read at enqueue time (never at
import), so ``override_settings`` works.

The task functions are thin: each calls one function of the domain layer. This module is a door:
the domain never imports it, so whatever must be queued (a stored delivery, a retry) is queued
here or by another door.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import close_old_connections, transaction

from . import budget, calendars, conf, leases, scheduling, webhooks
from .models import Calendar, CalendarEvent, DeliveryStatus

logger = logging.getLogger(__name__)

try:  # Django 6+
    from django.tasks import task as _framework_task
    from django.tasks import task_backends as _task_backends
except ImportError:  # Django 5.2
    try:
        from django_tasks import task as _framework_task
        from django_tasks import task_backends as _task_backends
    except ImportError:
        _framework_task = None
        _task_backends = None


class InlineTask:
    """Stand-in for a framework Task when no task framework is installed: runs on ``enqueue()``."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name = func.__name__

    def using(self, **options: Any) -> InlineTask:
        return self

    def enqueue(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def _task(func: Callable[..., Any]) -> Any:
    """Register ``func`` with the task framework when there is one, else wrap it inline."""
    if _framework_task is None:
        return InlineTask(func)
    return _framework_task(func)


#: Tasks of the bot work, enqueued on ``BOT_TASK_QUEUE`` when it is set.
_BOT_WORK: set[str] = set()


def _configured(task: Any) -> Any:
    queue = conf.get("TASK_QUEUE")
    if getattr(task, "name", None) in _BOT_WORK:
        queue = conf.get("BOT_TASK_QUEUE") or queue
    return _using(task, conf.get("TASK_BACKEND"), queue)


@functools.lru_cache(maxsize=64)
def _using(task: Any, backend: str, queue_name: str) -> Any:
    """``task`` bound to a backend and queue, made once per pair: building and validating a new
    task on every enqueue was a tenth of the webhook endpoint's time."""
    return task.using(backend=backend, queue_name=queue_name)


def supports_defer() -> bool:
    """Whether the configured backend can run a task later (``run_after``)."""
    if _task_backends is None:
        return False
    return bool(_task_backends[conf.get("TASK_BACKEND")].supports_defer)


def enqueue(
    task: Any,
    *args: Any,
    run_after: datetime | None = None,
    priority: int | None = None,
    **kwargs: Any,
) -> bool:
    """Enqueue ``task`` on the configured backend and queue.

    With ``run_after`` on a backend that cannot defer, nothing is enqueued and False is returned:
    the caller's row stays due and ``manage.py recall_webhooks --retry-failed`` picks it up.
    ``priority`` (-100..100, higher first) is passed on where the backend orders by it
    (django-tasks-db does; RQ does not, and the work inside each task is ordered anyway).
    """
    configured = _configured(task)
    backends = _task_backends
    if priority is not None and backends and backends[conf.get("TASK_BACKEND")].supports_priority:
        configured = configured.using(priority=priority)
    if run_after is not None:
        if not supports_defer():
            return False
        configured = configured.using(run_after=run_after)
    configured.enqueue(*args, **kwargs)
    return True


def run_delivery(delivery_id: int, *, force: bool = False) -> str:
    """Process a stored delivery here and now; returns its status afterwards.

    When this attempt fails with a retry left, the retry is queued for ``next_attempt_at`` (on a
    backend that can defer; otherwise ``recall_webhooks --retry-failed`` picks it up); so is a
    delivery deferred because Recall's budget would make it wait longer than
    ``RATE_LIMIT_TASK_WAIT``: the worker is free for other work meanwhile.
    """
    with _task_wait(), scheduling.bots_handed_to(_hand_off_bots):
        status = webhooks.process_delivery(delivery_id, force=force)
    waiting = (DeliveryStatus.FAILED, DeliveryStatus.RECEIVED)
    retry_at = webhooks.retry_time(delivery_id) if status in waiting else None
    if retry_at is not None:
        try:
            enqueue(process_webhook_delivery, delivery_id, run_after=retry_at)
        except Exception:
            logger.exception("Could not enqueue the retry of webhook delivery %s", delivery_id)
    _enqueue_bot_retries()
    return status


def _task_wait() -> Any:
    """Inside a task, a call waits at most ``RATE_LIMIT_TASK_WAIT`` for Recall's budget."""
    return budget.waiting_at_most(conf.duration("RATE_LIMIT_TASK_WAIT").total_seconds())


def _hand_off_bots(event_ids: list[int], soonest: datetime) -> None:
    """One ``reconcile_bots`` task per batch of a sync's meetings, with its soonest's priority:
    the workers send bots in parallel while the sync goes on (inline on the immediate backend)."""
    enqueue(reconcile_bots, event_ids, priority=scheduling.priority_for(soonest))


def _enqueue_bot_retries() -> None:
    """Queue ``retry_bot_calls`` for the earliest bot call Recall refused, if one waits.

    The delivery itself counts as processed once its events are mirrored: a bot call Recall refused
    is kept on its event and retried by this task of its own (or by ``recall_webhooks
    --retry-failed`` on a backend that cannot defer). A task queued twice finds nothing due the
    second time. Its priority is that of the soonest waiting meeting, so where the backend orders
    by priority the meetings about to start go before those days away.
    """
    when = scheduling.next_bot_retry()
    if when is None or not leases.first_to_mark(leases.BOT_RETRY, when.isoformat()):
        return  # nothing waits, or a retry for that time is queued already
    try:
        enqueue(retry_bot_calls, run_after=when, priority=scheduling.bot_retry_priority())
    except Exception:
        logger.exception("Could not enqueue the retry of refused bot calls")


def retry_due(now: datetime | None = None) -> dict[str, int]:
    """Process every due delivery here and now (``recall_webhooks --retry-failed``, from cron);
    returns how many ended in each status."""
    due = list(webhooks.due_deliveries(now).values_list("pk", flat=True))
    statuses = Counter(run_delivery(delivery_id) for delivery_id in due)
    scheduling.retry_bot_calls(now=now)
    return dict(statuses)


def process_after_commit(delivery_ids: list[int], using: str | None = None) -> None:
    """Queue the processing of stored deliveries once their rows are committed.

    ``robust``: a failing enqueue must not fail the caller (the webhook's 2xx); the rows stay
    ``received`` and ``recall_webhooks --retry-failed`` picks them up.
    """
    if delivery_ids:
        transaction.on_commit(lambda: _handoff.add(delivery_ids), robust=True, using=using)


class Handoff:
    """Stored deliveries handed to the task queue in batches, by the requests that stored them.

    Enqueuing each delivery's processing cost the webhook endpoint a push to the queue per request
    (a Redis round trip, a row of a database queue): as much as storing the delivery. Here a
    request that finds no hand-off under way in its process enqueues every delivery waiting in it
    as one task, and again until none waits; a request that finds one under way adds its own and
    returns. Alone, a delivery goes out at once in its own task; under load one push carries many.
    Nothing is lost if the process dies meanwhile: the rows are ``received``, and
    ``recall_webhooks --retry-failed`` takes them (``webhooks.due_deliveries``).

    With a ``delay`` > 0 (``WEBHOOK_HANDOFF_DELAY``) a request only adds its deliveries: a thread
    of the process pushes everything waiting as one task at most every ``delay`` seconds, so the
    pushes do not grow with the rate (a push per delivery was a sixth of the endpoint's CPU when
    batches rarely formed). The thread is started by the first delivery in each process (a
    server forks its workers after import), and ``flush`` at exit sends what still waits.

    Bounded either way: a push sends tasks of at most ``batch_size`` deliveries (a backlog, say
    from a queue that was down, is shared by several workers, and no task's arguments grow with
    it), and while the pushes hang (a queue that does not answer) at most ``max_waiting``
    deliveries wait in memory; the rest are logged and left to ``--retry-failed``, their rows
    being stored.
    """

    def __init__(
        self,
        send: Callable[[list[int]], None],
        delay: Callable[[], float] = lambda: 0.0,
        *,
        batch_size: int = 500,
        max_waiting: int = 50_000,
    ) -> None:
        self._send = send
        self._delay = delay
        self._batch_size = batch_size
        self._max_waiting = max_waiting
        self.reset()
        os.register_at_fork(after_in_child=self.reset)
        atexit.register(self.flush)

    def reset(self) -> None:
        """Start afresh (in a forked child too): the parent's locks, deliveries and thread are the
        parent's; the child's first lingering delivery starts its own thread."""
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)
        self._flushing = threading.Lock()
        self._waiting: list[int] = []
        self._sending = False
        self._overflowing = False
        self._lingering = 0.0
        self._thread_pid: int | None = None

    def add(self, delivery_ids: list[int]) -> None:
        delay = self._delay()
        with self._lock:
            if not self._room_for(delivery_ids):
                return
            self._waiting.extend(delivery_ids)
            if delay > 0:
                self._linger(delay)
                return  # the process's thread pushes them
            if self._sending:
                return  # the request sending now takes these too
            self._sending = True
        try:
            while batch := self._take():
                self._push(batch)
        except BaseException:  # never leave the hand-off marked under way with nobody sending
            with self._lock:
                self._sending = False
            raise

    def _room_for(self, delivery_ids: list[int]) -> bool:
        """Whether ``delivery_ids`` may wait (under the lock); a hang is logged once, not per
        delivery, and again once the waiting list has drained."""
        if len(self._waiting) + len(delivery_ids) <= self._max_waiting:
            self._overflowing = self._overflowing and bool(self._waiting)
            return True
        if not self._overflowing:
            self._overflowing = True
            logger.error(
                "%d webhook deliveries wait for the task queue, which does not answer; new ones "
                "are left to manage.py recall_webhooks --retry-failed (their rows are stored)",
                len(self._waiting),
            )
        return False

    def _take(self) -> list[int]:
        """Every waiting delivery; when none waits, the hand-off ends (under the same lock)."""
        with self._lock:
            batch, self._waiting = self._waiting, []
            self._sending = bool(batch)
            return batch

    def _push(self, batch: list[int]) -> None:
        """Enqueue ``batch`` as tasks of at most ``batch_size``; a failure is logged and its rows
        stay ``received`` for cron."""
        for start in range(0, len(batch), self._batch_size):
            task_ids = batch[start : start + self._batch_size]
            try:
                self._send(task_ids)
            except Exception:
                logger.exception("Could not enqueue webhook deliveries %s", task_ids)

    def _linger(self, delay: float) -> None:
        """Wake this process's thread (started here at its first delivery); under the lock."""
        self._lingering = delay
        if self._thread_pid != os.getpid():  # a start that fails is tried again by the next
            name = "recall-calendar-handoff"
            threading.Thread(target=self._run, name=name, daemon=True).start()
            self._thread_pid = os.getpid()
        self._due.notify()

    def _run(self) -> None:
        """The thread: once deliveries wait, let more join them for ``delay``, push them all."""
        while True:
            with self._lock:
                self._due.wait_for(lambda: self._waiting)
                delay = self._lingering
            time.sleep(delay)
            self.flush()
            self._close_connections()

    @staticmethod
    def _close_connections() -> None:
        """Close the thread's unusable or expired connections (a database queue's), as Django
        does after a request; a failure must not end the thread: deliveries would wait for cron."""
        try:
            close_old_connections()
        except Exception:
            logger.exception("Could not close the webhook hand-off's database connections")

    def flush(self) -> None:
        """Push every waiting delivery as one task now: the thread's round, and the process's
        exit (``atexit``; a process killed outright leaves them to ``--retry-failed``). One flush
        at a time: the exit's waits for a push of the thread under way."""
        with self._flushing:
            with self._lock:
                batch, self._waiting = self._waiting, []
            if batch:
                self._push(batch)


@_task
def reconcile_bots(event_ids: list[int]) -> dict[str, int]:
    """Bring the bots of these meetings in line with their policy, soonest first (a batch a
    webhook's sync handed off)."""
    with _task_wait():
        result = scheduling.reconcile_events(CalendarEvent.objects.filter(pk__in=event_ids))
    _enqueue_bot_retries()
    return {
        "scheduled": result.scheduled,
        "rescheduled": result.rescheduled,
        "unscheduled": result.unscheduled,
        "failed": result.failed,
    }


@_task
def retry_bot_calls() -> dict[str, int]:
    """Try again the bot calls Recall refused that are due (and queue the next, if any).

    Running, this task is no longer queued: its mark goes first, so the next retry is queued even
    for the same time, as it must be when this one started early (RQ's scheduler counts whole
    seconds and starts a task up to a second before its ``run_after``; clocks differ too)."""
    leases.clear_mark(leases.BOT_RETRY)
    with _task_wait(), scheduling.bots_handed_to(_hand_off_bots):
        result = scheduling.retry_bot_calls()
    _enqueue_bot_retries()
    return {"scheduled": result.scheduled + result.rescheduled, "failed": result.failed}


@_task
def process_webhook_delivery(delivery_id: int) -> str:
    """Process one stored webhook delivery; returns its final status (the row holds the details)."""
    return run_delivery(delivery_id)


@_task
def process_webhook_deliveries(delivery_ids: list[int]) -> list[str]:
    """Process stored webhook deliveries one after another (a batch the endpoint handed over);
    returns their final statuses (the rows hold the details)."""
    return [run_delivery(delivery_id) for delivery_id in delivery_ids]


_handoff = Handoff(
    lambda batch: enqueue(process_webhook_deliveries, batch),
    lambda: conf.duration("WEBHOOK_HANDOFF_DELAY").total_seconds(),
)


@_task
def sync_calendar(calendar_id: int, full: bool = False) -> dict[str, int]:
    """Sync a calendar as ``manage.py recall_sync`` does (refresh, events, bots); return counts.

    ``full`` ignores the watermark (a sync after missed webhooks).
    """
    done = calendars.sync_calendar(Calendar.objects.get(pk=calendar_id), full=full)
    return {
        "created": done.events.created,
        "updated": done.events.updated,
        "deleted": done.events.deleted,
        "pages": done.events.pages,
        "bots_failed": done.bots.failed,
    }


@_task
def apply_recording_policy(calendar_id: int) -> dict[str, int]:
    """Bring the bots of a calendar's upcoming meetings in line with its (changed) policy."""
    # From now on a new change needs a new run: this one may read the policy before it commits.
    cache.delete(_policy_pending_key(calendar_id))
    calendar = Calendar.objects.filter(pk=calendar_id).first()
    if calendar is None:  # disconnected meanwhile: nothing left to schedule
        return {}
    result = scheduling.reconcile_calendar(calendar)
    return {
        "scheduled": result.scheduled,
        "rescheduled": result.rescheduled,
        "unscheduled": result.unscheduled,
        "failed": result.failed,
    }


#: How long a queued policy application absorbs further changes of its calendar; past it (a
#: worker queue backed up this long) a change enqueues another run, which costs calls, not safety.
POLICY_PENDING_TIMEOUT = 60 * 60


def _policy_pending_key(calendar_id: int) -> str:
    return f"recall_calendar:policy_pending:{calendar_id}"


def apply_recording_policy_later(calendar_id: int) -> None:
    """Enqueue ``apply_recording_policy`` once the policy change commits, unless a run for this
    calendar is queued already (it reads the policy when it starts, so it applies this change too).

    A policy change can mean one Recall call per upcoming meeting: a front end's request must not
    wait for them (with the ImmediateBackend they still run at once, after the commit), and four
    quick toggles must not cost four rounds of calls. The "queued" mark is an atomic
    ``cache.add``: shared by every process with a shared cache (Redis, database, memcached).
    """

    def enqueue_once() -> None:
        key = _policy_pending_key(calendar_id)
        if not cache.add(key, True, POLICY_PENDING_TIMEOUT):
            return
        try:
            enqueue(apply_recording_policy, calendar_id)
        except BaseException:
            cache.delete(key)  # nothing is queued: the next change must enqueue
            raise

    transaction.on_commit(enqueue_once, robust=True)


_BOT_WORK.update(task.name for task in (reconcile_bots, retry_bot_calls))
