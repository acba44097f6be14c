"""The ``recall_emulator`` fixture processes webhooks in the test whatever TASKS the project has.

A project whose default backend queues work for a worker (the database backend the README's
Production section recommends) would otherwise see its webhooks stored and never processed.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from django_recall_calendar.models import Calendar, CalendarEvent, DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db

DUMMY = f"{django_settings.TASKS_MODULE}.backends.dummy.DummyBackend"


@pytest.fixture
def queuing_project(settings):
    """A project whose every task backend only queues (nothing runs until a worker would)."""
    settings.TASKS = {"default": {"BACKEND": DUMMY, "QUEUES": ["calendars"]}}
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TASK_QUEUE": "calendars"}


def test_webhooks_are_processed_in_the_test_with_a_queuing_backend(
    queuing_project, recall_emulator, django_user_model
):
    user = django_user_model.objects.create_user("ann")
    remote = recall_emulator.create_calendar(oauth_email="ann@example.com")
    calendar = Calendar.objects.create(
        user=user, recall_id=remote["id"], platform=remote["platform"], recording_policy="all"
    )
    recall_emulator.connect_calendar(remote["id"], email="ann@example.com")
    recall_emulator.add_event(remote["id"])
    recall_emulator.settle()  # Recall delivers late, maybe twice, in any order: wait for all

    assert CalendarEvent.objects.filter(calendar=calendar).count() == 1
    assert len(recall_emulator.bots) == 1
    statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == {DeliveryStatus.PROCESSED}


def test_the_projects_own_backends_are_kept(queuing_project, recall_emulator, settings):
    assert settings.TASKS["default"]["BACKEND"] == DUMMY
    assert settings.RECALL_CALENDAR["TASK_QUEUE"] == "calendars"
