"""pytest plugin (pytest11 entry point): the ``recall_emulator`` fixture and its marker.

``@pytest.mark.recall_emulator(webhooks=False)`` (on a test, class or module) makes the emulator
record its webhooks in ``deliveries`` without delivering them, for a test that drives each sync or
posts the recorded deliveries itself; any other keyword is passed to ``RecallEmulator`` (e.g.
``api_key="..."``, ``page_size=10``), and ``settings.RECALL_CALENDAR`` follows it. Every test
starts with Recall's whole rate limit budget (see ``budget.py``).

Imports nothing of Django or of the emulator at module level, so loading it can never break a pytest
run, with or without pytest-django.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .emulator import RecallEmulator


class DjangoClientDelivery:
    """Delivers a webhook to ``recall_calendar:webhook`` in-process with ``django.test.Client``.

    It runs in the thread that caused the webhook, so the test's database transaction sees the
    delivery. Failures (the URL not routed yet, a view error) are recorded on the delivery.

    Inside a test's transaction nothing ever commits, so the processing the view enqueues "on
    commit" would never run; the callbacks of the delivery are run when it returns instead, as a
    real commit would, so a plain ``django_db`` test sees the delivery processed.
    """

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        from django.db import connection
        from django.test import Client, TestCase
        from django.urls import reverse

        url = reverse("recall_calendar:webhook")
        extra = {name: value for name, value in headers.items() if name != "content-type"}
        in_test_transaction = connection.in_atomic_block
        commit = (
            TestCase.captureOnCommitCallbacks(execute=True)
            if in_test_transaction
            else nullcontext()
        )
        with commit:
            response = Client().post(url, data=body, content_type="application/json", headers=extra)
        return response.status_code


DATABASE_FIXTURES = ("db", "transactional_db", "django_db_reset_sequences", "live_server")


def _uses_database(request: pytest.FixtureRequest) -> bool:
    """Whether the test may touch the database (a ``django_db`` mark or a database fixture)."""
    return request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in DATABASE_FIXTURES
    )


#: The task backend alias the fixture adds for the app's tasks (see ``recall_emulator``).
IMMEDIATE_ALIAS = "recall_emulator_immediate"


def _immediate_backend_path() -> str | None:
    """Django's immediate task backend (the backport's on Django 5.2), or None without either."""
    from importlib.util import find_spec

    for module in ("django.tasks", "django_tasks"):
        try:
            if find_spec(module) is not None:
                return f"{module}.backends.immediate.ImmediateBackend"
        except ModuleNotFoundError:
            continue
    return None


def _run_tasks_immediately(settings, current: dict) -> dict:
    """RECALL_CALENDAR changes that run the app's tasks at once, on a backend added for the test.

    A host whose TASKS queue work for a worker (the database backend, RQ) would otherwise see
    nothing happen in a test: the webhook's processing would wait in a queue no worker reads.
    """
    backend = _immediate_backend_path()
    if backend is None:  # no task framework: the app runs its tasks inline anyway
        return {}
    queue = current.get("TASK_QUEUE", "default")
    tasks = dict(getattr(settings, "TASKS", None) or {})
    settings.TASKS = {**tasks, IMMEDIATE_ALIAS: {"BACKEND": backend, "QUEUES": [queue]}}
    return {"TASK_BACKEND": IMMEDIATE_ALIAS}


MARKER = "recall_emulator"


def pytest_configure(config: pytest.Config) -> None:
    """Registers the marker, so host projects running with ``--strict-markers`` accept it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(webhooks=True, **options): options of the recall_emulator fixture; "
        "webhooks=False records webhooks without delivering them, other options go to "
        "RecallEmulator (e.g. unruly=False, rate_limits=False, strict=True, time_scale=60)",
    )


def emulator_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``recall_emulator`` marks on the test, its class and module, merged (the closest
    wins for an option several set)."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
def recall_emulator(request: pytest.FixtureRequest) -> Iterator[RecallEmulator]:
    """A running emulator, with ``settings.RECALL_CALENDAR``'s BASE_URL, API_KEY and secret its own.

    It behaves as Recall does (unruly delivery, rate limits: see ``RecallEmulator``); a test that
    needs a kind one says so: ``@pytest.mark.recall_emulator(unruly=False)``. Kind, webhooks from
    control calls (``add_event``...) are delivered at once, in-process; unruly, they wait (as do
    those caused by API requests) for ``deliver_pending()`` or ``settle()``. A test without
    database access only records deliveries (set ``webhook_url = DjangoClientDelivery()`` to
    deliver anyway), and so does every test marked ``@pytest.mark.recall_emulator(webhooks=False)``.
    The app's tasks run on an immediate backend added to ``TASKS`` for the test, whatever backend
    the project configures (set ``RECALL_CALENDAR["TASK_BACKEND"]`` after this fixture to test
    with another).
    """
    from .emulator import RecallEmulator

    settings = request.getfixturevalue("settings")
    options = emulator_options(request)
    webhooks = options.pop("webhooks", True)
    target = DjangoClientDelivery() if webhooks and _uses_database(request) else None
    with RecallEmulator(webhook_url=target, **options) as emulator:
        current = dict(getattr(settings, "RECALL_CALENDAR", None) or {})
        settings.RECALL_CALENDAR = {
            **current,
            **_run_tasks_immediately(settings, current),
            "BASE_URL": emulator.base_url,
            "API_KEY": emulator.api_key,
            "WEBHOOK_SECRET": emulator.webhook_secret,
        }
        _fresh_budget()
        yield emulator


def _fresh_budget() -> None:
    """Each test starts with the whole Recall budget (a database store rolls back by itself)."""
    from .. import budget

    if not budget.storage_uri().startswith("database:"):
        budget.reset()


@pytest.fixture
def recall_emulator_live_server(
    recall_emulator: RecallEmulator, request: pytest.FixtureRequest
) -> RecallEmulator:
    """The emulator delivering over HTTP to pytest-django's ``live_server`` (from any thread)."""
    from django.urls import reverse

    live_server = request.getfixturevalue("live_server")
    recall_emulator.webhook_url = live_server.url + reverse("recall_calendar:webhook")
    return recall_emulator
