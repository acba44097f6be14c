"""The "my calendars" pages: listing, connect forms, recording settings, disconnect, ownership,
user deletion, and that no secret of the connect flow is left in any table."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_recall_calendar import signals
from django_recall_calendar.models import Calendar
from tests import builders

from .connect_support import CALENDARS_URL, PROVIDERS, messages_of, oauth_connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_calendar(alice_client, recall_emulator) -> Calendar:
    return builders.oauth_calendar(alice_client, recall_emulator, "alice@work.example")


@pytest.fixture
def disconnected_signals():
    received: list[dict] = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    signals.calendar_disconnected.connect(listener, weak=False, dispatch_uid="test-listener")
    yield received
    signals.calendar_disconnected.disconnect(dispatch_uid="test-listener")


def test_the_page_needs_a_login(client):
    response = client.get(CALENDARS_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_page_offers_csrf_protected_post_forms_to_connect(alice_client):
    response = alice_client.get(CALENDARS_URL)

    content = response.content.decode()
    assert "No calendar is connected yet." in content
    for backend, label in [("google-oauth2", "Google Calendar"), ("microsoft-graph", "Outlook")]:
        action = reverse("social:begin", args=[backend])
        assert f'<form method="post" action="{action}"' in content
        assert f"Connect {label}" in content
    assert content.count('name="csrfmiddlewaretoken"') == 2
    # social-auth's begin view refuses GET, and a POST without the CSRF token is refused.
    assert alice_client.get(reverse("social:begin", args=["google-oauth2"])).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(response.wsgi_request.user)
    assert strict.post(reverse("social:begin", args=["google-oauth2"])).status_code == 403


def test_the_page_lists_only_the_users_calendars_with_their_status(alice_calendar, recall_emulator):
    bob = builders.user("bob", "bob@site.example")
    bobs = Client()
    bobs.force_login(bob)
    oauth_connect(bobs, recall_emulator, "microsoft-graph", "bob@work.example")

    page = bobs.get(CALENDARS_URL).content.decode()

    assert "bob@work.example" in page
    assert "alice@work.example" not in page
    assert "Connecting" in page
    assert "Reconnect" not in page


@pytest.mark.parametrize("backend", [backend for backend, _ in PROVIDERS])
def test_disconnect_deletes_at_recall_and_locally(
    alice_client, recall_emulator, disconnected_signals, backend
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    calendar = Calendar.objects.get()

    page = alice_client.post(
        reverse("recall_calendar:calendar_disconnect", args=[calendar.pk]), follow=True
    )

    assert page.request["PATH_INFO"] == CALENDARS_URL
    assert messages_of(page) == [f"{calendar} was disconnected."]
    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()
    [sent] = disconnected_signals
    assert sent["deleted"] is True
    assert sent["calendar"].recall_id == calendar.recall_id
    assert sent["reason"]


def test_disconnect_of_a_calendar_already_gone_at_recall_still_works(
    alice_client, alice_calendar, recall_http
):
    recall_http.delete(f"/api/v2/calendars/{alice_calendar.recall_id}/")

    page = alice_client.post(
        reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk]), follow=True
    )

    assert messages_of(page) == [f"{alice_calendar} was disconnected."]
    assert not Calendar.objects.exists()


def test_disconnect_while_recall_is_down_keeps_the_calendar_and_says_so(
    alice_client, alice_calendar, recall_emulator, disconnected_signals
):
    recall_emulator.inject_fault("503", count=50, path="/api/v2/calendars/")

    page = alice_client.post(
        reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk]), follow=True
    )

    [message] = messages_of(page)
    assert "could not be disconnected" in message and "try again in a few minutes" in message
    assert '<li class="error">' in page.content.decode()  # shown on the page
    assert Calendar.objects.filter(pk=alice_calendar.pk).exists()
    assert len(recall_emulator.calendars) == 1
    assert disconnected_signals == []


def test_disconnect_is_post_only(alice_client, alice_calendar):
    url = reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk])

    assert alice_client.get(url).status_code == 405
    assert Calendar.objects.exists()


def test_another_user_cannot_act_on_a_calendar(alice_calendar, recall_emulator):
    mallory = Client()
    mallory.force_login(builders.user("mallory"))

    disconnect = reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk])
    change = reverse("recall_calendar:calendar_settings", args=[alice_calendar.pk])
    assert mallory.post(disconnect).status_code == 404
    policy = {f"calendar-{alice_calendar.pk}-recording_policy": "all"}
    assert mallory.post(change, policy).status_code == 404
    missing = reverse("recall_calendar:calendar_disconnect", args=[alice_calendar.pk + 1000])
    assert mallory.post(missing).status_code == 404

    alice_calendar.refresh_from_db()
    assert alice_calendar.recording_policy == "off"
    assert len(recall_emulator.calendars) == 1
    assert recall_emulator.requests_for("DELETE") == []


def test_the_recording_settings_are_editable(alice_client, alice_calendar):
    prefix = f"calendar-{alice_calendar.pk}"
    url = reverse("recall_calendar:calendar_settings", args=[alice_calendar.pk])
    page = alice_client.get(CALENDARS_URL).content.decode()
    assert f'name="{prefix}-recording_policy"' in page

    response = alice_client.post(
        url,
        {f"{prefix}-recording_policy": "external", f"{prefix}-min_attendees": "3"},
        follow=True,
    )

    assert messages_of(response) == [f"Recording settings of {alice_calendar} saved."]
    alice_calendar.refresh_from_db()
    assert alice_calendar.recording_policy == "external"
    assert alice_calendar.min_attendees == 3
    assert alice_calendar.skip_declined is False  # an unticked box


@pytest.mark.recall_emulator(unruly=False)
def test_a_changed_policy_is_applied_at_once(
    alice_client, alice_calendar, recall_emulator, django_capture_on_commit_callbacks
):
    calendar_id = str(alice_calendar.recall_id)
    recall_emulator.connect_calendar(calendar_id, email="alice@work.example")
    event = recall_emulator.add_event(calendar_id, meeting_url="https://zoom.us/j/123456789")
    assert alice_calendar.events.get().recall_id is not None  # arrived through the webhook
    assert recall_emulator.bots == {}  # the policy is "off"
    prefix = f"calendar-{alice_calendar.pk}"

    with django_capture_on_commit_callbacks(execute=True):  # the task runs after the commit
        alice_client.post(
            reverse("recall_calendar:calendar_settings", args=[alice_calendar.pk]),
            {f"{prefix}-recording_policy": "all", f"{prefix}-min_attendees": "0"},
        )

    [bot] = recall_emulator.bots.values()
    assert event["id"] in {str(event_id) for event_id in bot["event_ids"]}


@pytest.mark.parametrize(
    "data",
    [
        {"recording_policy": "everything", "min_attendees": "0"},
        {"recording_policy": "all", "min_attendees": "-1"},
        {"recording_policy": "all", "min_attendees": "many"},
        {},
    ],
)
def test_bad_recording_settings_are_refused_with_the_form_errors(
    alice_client, alice_calendar, data
):
    prefix = f"calendar-{alice_calendar.pk}"
    url = reverse("recall_calendar:calendar_settings", args=[alice_calendar.pk])

    response = alice_client.post(url, {f"{prefix}-{key}": value for key, value in data.items()})

    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    alice_calendar.refresh_from_db()
    assert alice_calendar.recording_policy == "off"
    assert alice_calendar.min_attendees == 0


def test_deleting_a_user_deletes_their_calendars_at_recall(
    alice, alice_client, recall_emulator, django_capture_on_commit_callbacks
):
    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")
    oauth_connect(alice_client, recall_emulator, "microsoft-graph", "alice@work.example")
    assert len(recall_emulator.calendars) == 2

    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()

    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()


def test_user_deletion_is_never_blocked_by_recall(
    alice, alice_calendar, recall_emulator, django_capture_on_commit_callbacks, caplog
):
    recall_emulator.inject_fault("503", count=50, path="/api/v2/calendars/")

    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        alice.delete()

    assert not Calendar.objects.exists()
    assert str(alice_calendar.recall_id) in caplog.text
    assert len(recall_emulator.calendars) == 1  # Recall failed: logged, the user is gone anyway


def test_a_rolled_back_user_deletion_leaves_recall_alone(
    alice, alice_calendar, recall_emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alice.delete()

    assert len(callbacks) == 1  # runs only once the deletion commits
    assert len(recall_emulator.calendars) == 1


def test_no_secret_of_the_connect_flow_is_stored_in_any_table(
    alice_client, recall_emulator, settings
):
    for backend, _ in PROVIDERS:
        oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
        oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")  # reconnect
    secrets = {
        settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET,
        settings.SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET,
    }
    secrets |= {c["oauth_refresh_token"] for c in recall_emulator.calendars.values()}
    assert len(secrets) == 4

    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump.extend(repr(row) for row in cursor.fetchall())
    text = "\n".join(dump)

    assert "alice@work.example" in text  # the dump does see the connect flow's rows
    assert [secret for secret in secrets if secret in text] == []
