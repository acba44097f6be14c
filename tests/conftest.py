"""Fixtures shared across the suite (each addition is owned by the feature that needs it)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings

from tests import builders


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--readme-host",
        action="store_true",
        help="run the README-driven host test (builds the wheel and a venv; slow)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``readme_host`` tests run only with ``--readme-host`` (.ci/run gives them a pass); the
    suite's emulator validates strictly (unknown bot_config keys are refused too)."""
    strict = pytest.mark.recall_emulator(strict=True)
    for item in items:
        item.add_marker(strict)
    if config.getoption("--readme-host"):
        return
    skip = pytest.mark.skip(reason="slow: run with --readme-host (.ci/run does)")
    for item in items:
        if item.get_closest_marker("readme_host"):
            item.add_marker(skip)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.postgres(reason=...)``: the test needs PostgreSQL (skipped, with the reason,
    on any other database; ``.ci/run`` runs the suite on PostgreSQL too)."""
    marker = item.get_closest_marker("postgres")
    if marker is None:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        why = marker.kwargs.get("reason", "needs PostgreSQL")
        pytest.skip(f"{why}: set DATABASE_URL to a PostgreSQL database")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Every request our code sends fits Recall's Create Bot schema (strict): a 400 for a schema
    break fails the test, unless the test sends one on purpose (``sends_invalid_bot_config``).
    Checked before the fixtures are torn down, without changing the order they are set up in."""
    emulator = getattr(item, "funcargs", {}).get("recall_emulator")
    if emulator is not None and not item.get_closest_marker("sends_invalid_bot_config"):
        assert emulator.schema_refusals == [], "a request broke Recall's Create Bot schema"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: the REST API's throttles count requests there, per
    user id, and ids repeat from one test to the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def alice(db):
    """A site user; the calendar accounts she connects have addresses of their own."""
    return builders.user("alice", "alice@site.example")


@pytest.fixture
def alice_client(client, alice):
    """The test client, signed in as alice."""
    client.force_login(alice)
    return client


class RecallHttp(requests.Session):
    """A session speaking to the emulator as Recall's clients do: token header, relative paths."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers["Authorization"] = f"Token {api_key}"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        full = self.base_url + url if url.startswith("/") else url
        return super().request(method, full, *args, **kwargs)


@pytest.fixture
def recall_http(recall_emulator):
    """Raw HTTP access to the running emulator (for tests of the emulator's own behaviour)."""
    with RecallHttp(recall_emulator.base_url, recall_emulator.api_key) as session:
        yield session


@pytest.fixture
def queued(settings):
    """A task backend that keeps tasks (and supports run_after) instead of running them."""
    backends = f"{django_settings.TASKS_MODULE}.backends"
    settings.TASKS = {**settings.TASKS, "queued": {"BACKEND": f"{backends}.dummy.DummyBackend"}}
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TASK_BACKEND": "queued"}
    backend = import_module(django_settings.TASKS_MODULE).task_backends["queued"]
    yield backend
    backend.results.clear()


@pytest.fixture(params=["django view", "wsgi door"])
def door(request):
    """Each door of the webhook endpoint in turn (``tests/webhook_doors.py``): the Django view,
    and ``WebhookReceiver`` in front of Django. Both must answer alike."""
    from tests.webhook_doors import Door

    return Door(request.param, wsgi=request.param == "wsgi door")


@pytest.fixture
def secret(settings):
    """The webhook secret the signed deliveries of ``tests/webhook_doors.py`` carry."""
    from tests.webhook_doors import SECRET

    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_SECRET": SECRET}
    return SECRET
