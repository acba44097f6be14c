"""Fixtures shared across the suite (each addition is owned by the feature that needs it)."""

from __future__ import annotations

from typing import Any

import pytest
import requests


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


@pytest.fixture
def alice(django_user_model):
    """A site user; the calendar accounts she connects have addresses of their own."""
    return django_user_model.objects.create_user("alice", "alice@site.example", "pw")


@pytest.fixture
def alice_client(client, alice):
    """The test client, signed in as alice."""
    client.force_login(alice)
    return client


@pytest.fixture
def quiet_emulator(recall_emulator):
    """The emulator recording its webhooks without delivering them: the test drives each sync."""
    recall_emulator.webhook_url = None
    return recall_emulator


@pytest.fixture
def make_calendar(quiet_emulator, django_user_model):
    """Create a calendar at the emulator (connected unless told otherwise) and its local row."""
    from django_recall_calendar.models import Calendar

    users: list = []

    def make(
        platform: str = "google_calendar",
        email: str = "owner@example.com",
        *,
        user=None,
        connect: bool = True,
    ) -> Calendar:
        if user is None:
            if not users:
                users.append(django_user_model.objects.create_user("owner", email))
            user = users[0]
        remote = quiet_emulator.create_calendar(platform, oauth_email=email)
        if connect:
            quiet_emulator.connect_calendar(remote["id"], email=email)
        return Calendar.objects.create(
            user=user, recall_id=remote["id"], platform=platform, oauth_email=email
        )

    return make


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
