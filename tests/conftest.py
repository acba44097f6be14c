"""Fixtures shared across the suite (each addition is owned by the feature that needs it)."""

from __future__ import annotations

import pytest


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
