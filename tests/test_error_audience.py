"""Errors say who must act: a refused key is the site's to fix, an outage is to be retried.

For each failure Recall can hand us — 401 (a wrong key), 403 (its firewall), 503 (an outage) and a
timeout — the end user reads whether to wait for staff or try again, and never a setting's name;
staff (admin messages, the log) read which setting to fix, or that no setting is at fault. The
API key's value appears in neither.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from django_recall_calendar.models import Calendar
from tests import builders
from tests.connect_support import messages_of, oauth_connect

pytestmark = pytest.mark.django_db

FAULTS = ["401", "403", "503", "stall"]

#: What the end user reads: staff's problem, or a passing one.
FOR_USER = {
    "401": "This site's calendar integration is misconfigured; staff have been told.",
    "403": "This site's calendar integration is misconfigured; staff have been told.",
    "503": "The calendar service did not answer; please try again in a few minutes.",
    "stall": "The calendar service did not answer; please try again in a few minutes.",
}
#: What staff read: the setting to fix, or that none is at fault.
FOR_STAFF = {
    "401": "Recall refused this site's API key (401): set RECALL_CALENDAR['API_KEY']",
    "403": "check RECALL_CALENDAR['API_KEY'] and RECALL_CALENDAR['REGION'] (or BASE_URL)",
    "503": "try again later, no setting of this site is at fault",
    "stall": "try again later, no setting of this site is at fault",
}
#: Staff's log level: a misconfiguration is an error someone must fix, an outage a warning.
LOG_LEVEL = {"401": logging.ERROR, "403": logging.ERROR, "503": logging.WARNING}
LOG_LEVEL["stall"] = logging.WARNING


@pytest.fixture
def failing(recall_emulator, settings):
    """Make every later request under ``path`` fail with ``kind`` (a stall outlasts TIMEOUT)."""
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TIMEOUT": 0.3, "MAX_RETRIES": 1}

    def fail(kind: str, path: str) -> None:
        recall_emulator.inject_fault(kind, count=20, path=path, seconds=1.0)

    return fail


@pytest.fixture
def alice_calendar(recall_emulator):
    alice = builders.user("alice", "alice@corp.example")
    return builders.connected_calendar(recall_emulator, alice, "alice@corp.example")


def staff_record(caplog) -> logging.LogRecord:
    """The one line the failing door logged (the client's own retry lines left aside)."""
    [record] = [
        r
        for r in caplog.records
        if r.name.startswith("django_recall_calendar") and r.name != "django_recall_calendar.client"
    ]
    return record


def assert_staff_log(caplog, kind: str, api_key: str) -> None:
    record = staff_record(caplog)
    assert record.levelno == LOG_LEVEL[kind]
    assert FOR_STAFF[kind] in record.getMessage()
    assert api_key not in caplog.text


def assert_for_user(text: str, kind: str, api_key: str) -> None:
    assert FOR_USER[kind] in text
    assert "RECALL_CALENDAR" not in text and api_key not in text


@pytest.mark.parametrize("kind", FAULTS)
def test_connecting_a_calendar(client, recall_emulator, failing, caplog, kind):
    client.force_login(builders.user("bob", "bob@corp.example"))
    failing(kind, "/api/v2/calendars/")

    page = oauth_connect(client, recall_emulator, "google-oauth2", "bob@corp.example")

    [message] = messages_of(page)
    assert message.startswith("Your calendar could not be connected.")
    assert_for_user(message, kind, recall_emulator.api_key)
    assert_staff_log(caplog, kind, recall_emulator.api_key)
    assert not Calendar.objects.exists()


@pytest.mark.parametrize("kind", FAULTS)
def test_disconnecting_from_my_calendars(
    client, recall_emulator, alice_calendar, failing, caplog, kind
):
    client.force_login(alice_calendar.user)
    failing(kind, "/api/v2/calendars/")

    page = client.post(
        reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk]), follow=True
    )

    [message] = messages_of(page)
    assert_for_user(message, kind, recall_emulator.api_key)
    assert_staff_log(caplog, kind, recall_emulator.api_key)
    assert Calendar.objects.filter(pk=alice_calendar.pk).exists()


@pytest.mark.parametrize("kind", FAULTS)
def test_the_rest_api(recall_emulator, alice_calendar, failing, caplog, kind):
    api = APIClient()
    api.force_authenticate(alice_calendar.user)
    failing(kind, "/api/v2/calendars/")

    response = api.delete(reverse("recall_calendar:api-calendar-detail", args=[alice_calendar.pk]))

    assert response.status_code == 502
    assert_for_user(response.json()["detail"], kind, recall_emulator.api_key)
    assert_staff_log(caplog, kind, recall_emulator.api_key)


@pytest.mark.parametrize("kind", FAULTS)
def test_an_admin_action_tells_staff_what_to_fix(
    admin_client, recall_emulator, alice_calendar, failing, kind
):
    failing(kind, f"/api/v2/calendars/{alice_calendar.recall_id}/")

    response = admin_client.post(
        reverse("admin:recall_calendar_calendar_changelist"),
        {"action": "refresh_status", "_selected_action": [alice_calendar.pk]},
    )

    [(level, text)] = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert level == "error" and text.startswith("Failed 1: ")
    assert FOR_STAFF[kind] in text
    assert recall_emulator.api_key not in text


@pytest.mark.parametrize("kind", ["401", "403"])
def test_the_admin_delete_page_names_the_setting(
    admin_client, recall_emulator, alice_calendar, failing, kind
):
    failing(kind, "/api/v2/calendars/")

    response = admin_client.post(
        reverse("admin:recall_calendar_calendar_delete", args=[alice_calendar.pk]), {"post": "yes"}
    )

    [message] = [m.message for m in get_messages(response.wsgi_request)]
    assert "was not deleted" in message and FOR_STAFF[kind] in message
    assert Calendar.objects.filter(pk=alice_calendar.pk).exists()


def test_connecting_before_the_api_key_is_set_blames_the_site(
    client, recall_emulator, settings, caplog
):
    """The key is checked where it is needed: a connect without one tells the user to wait for
    staff, and staff the setting (migrate and check let the site run without it)."""
    client.force_login(builders.user("bob", "bob@corp.example"))
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "API_KEY": ""}

    page = oauth_connect(client, recall_emulator, "google-oauth2", "bob@corp.example")

    [message] = messages_of(page)
    assert_for_user(message, "401", recall_emulator.api_key)
    record = staff_record(caplog)
    assert record.levelno == logging.ERROR
    assert "RECALL_CALENDAR['API_KEY'] is not set" in record.getMessage()
    assert recall_emulator.calendars == {}
