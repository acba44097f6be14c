"""Telling a user that Recall lost their calendar: the page shows why and offers Reconnect, and,
when enabled, an email links to the page. Driven by the emulator's signed webhooks, end to end
(webhook view, stored delivery, task, sync, signal, receiver)."""

from __future__ import annotations

import logging

import pytest
from django.core import mail

from django_recall_calendar.models import Calendar, CalendarStatus
from tests import builders

from .connect_support import CALENDARS_URL, oauth_connect

# Each disconnection webhook is delivered at once, in order (a kind emulator).
pytestmark = [pytest.mark.django_db, pytest.mark.recall_emulator(unruly=False)]


@pytest.fixture
def notify(settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "NOTIFY_DISCONNECTED_BY_EMAIL": True,
        "SITE_URL": "https://app.example.com/",
    }


def connected_calendar(client, emulator, backend="google-oauth2") -> Calendar:
    """A calendar connected through OAuth whose first sync Recall reported as done."""
    calendar = builders.oauth_calendar(
        client, emulator, "alice@work.example", backend, connect=True
    )
    assert calendar.status == CalendarStatus.CONNECTED
    mail.outbox.clear()
    return calendar


@pytest.mark.parametrize("backend", ["google-oauth2", "microsoft-graph"])
def test_a_disconnection_webhook_emails_the_owner_a_reconnect_link(
    alice_client, recall_emulator, notify, backend
):
    calendar = connected_calendar(alice_client, recall_emulator, backend)

    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "invalid_grant"}
    )

    [email] = mail.outbox
    assert email.to == ["alice@site.example"]
    assert "alice@work.example" in email.subject
    assert "disconnected" in email.subject
    assert "invalid_grant" in email.body
    assert f"https://app.example.com{CALENDARS_URL}" in email.body
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.DISCONNECTED


def test_the_page_shows_why_and_offers_reconnect(alice_client, recall_emulator):
    calendar = connected_calendar(alice_client, recall_emulator, "microsoft-graph")

    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "AADSTS7000215"}
    )

    page = alice_client.get(CALENDARS_URL).content.decode()
    assert "Disconnected" in page
    assert "AADSTS7000215" in page
    assert 'action="/social/login/microsoft-graph/"' in page
    assert ">Reconnect</button>" in page
    assert mail.outbox == []  # the email is off by default


def test_a_calendar_recall_no_longer_knows_is_shown_as_missing(
    alice_client, recall_emulator, recall_http
):
    from django_recall_calendar.sync import refresh_calendar

    calendar = connected_calendar(alice_client, recall_emulator)
    recall_http.delete(f"/api/v2/calendars/{calendar.recall_id}/")
    refresh_calendar(calendar)

    page = alice_client.get(CALENDARS_URL).content.decode()
    assert "Missing at Recall" in page
    assert "Recall no longer knows this calendar." in page
    assert ">Reconnect</button>" in page


def test_no_email_when_the_owner_disconnects_it_themselves(alice_client, recall_emulator, notify):
    calendar = connected_calendar(alice_client, recall_emulator)

    alice_client.post(f"/recall/calendars/{calendar.pk}/disconnect/")

    assert not Calendar.objects.exists()
    assert mail.outbox == []


def test_the_calendars_address_is_used_when_the_user_has_none(
    alice, alice_client, recall_emulator, notify
):
    alice.email = ""
    alice.save()
    calendar = connected_calendar(alice_client, recall_emulator)

    recall_emulator.disconnect_calendar(str(calendar.recall_id))

    [email] = mail.outbox
    assert email.to == ["alice@work.example"]
    assert "Reason given" not in email.body


def test_without_site_url_the_link_is_the_path_and_a_warning_is_logged(
    alice_client, recall_emulator, settings, caplog
):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "NOTIFY_DISCONNECTED_BY_EMAIL": True}
    calendar = connected_calendar(alice_client, recall_emulator)

    with caplog.at_level(logging.WARNING):
        recall_emulator.disconnect_calendar(str(calendar.recall_id))

    [email] = mail.outbox
    assert f"Reconnect it here: {CALENDARS_URL}" in email.body
    assert "SITE_URL" in caplog.text


def test_a_failing_mail_server_never_breaks_the_sync(
    alice_client, recall_emulator, notify, settings, caplog
):
    settings.EMAIL_BACKEND = "tests.connect_support.UnreachableMailServer"
    calendar = connected_calendar(alice_client, recall_emulator)

    with caplog.at_level(logging.ERROR):
        recall_emulator.disconnect_calendar(str(calendar.recall_id))

    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.DISCONNECTED
    assert "Could not email the owner" in caplog.text


def test_the_subject_is_plain_text_not_html_escaped(alice_client, recall_emulator, notify):
    """Django autoescapes templates: an apostrophe in the address arrived as ``&#x27;``."""
    oauth_connect(alice_client, recall_emulator, "google-oauth2", "o'brien@work.example")
    calendar = Calendar.objects.get()
    recall_emulator.connect_calendar(str(calendar.recall_id), email="o'brien@work.example")
    mail.outbox.clear()

    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "invalid_grant"}
    )

    [email] = mail.outbox
    assert "o'brien@work.example" in email.subject
