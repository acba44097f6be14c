"""Connecting calendars through social-auth's real views, for Google and Microsoft.

The provider's OAuth (consent page, token, user info) and Recall are both the emulator over HTTP;
the pipeline step, the views and social-auth run unmocked.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import IntegrityError
from django.db.models.signals import pre_save
from social_django.models import UserSocialAuth

from django_recall_calendar import signals
from django_recall_calendar.calendars import connect_calendar_for
from django_recall_calendar.models import Calendar, CalendarStatus
from django_recall_calendar.sync import refresh_calendar
from tests import builders

from .connect_support import CALENDARS_URL, PROVIDERS, messages_of, oauth_connect

pytestmark = pytest.mark.django_db

CLIENT_IDS = {
    "google-oauth2": (
        settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY,
        settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET,
    ),
    "microsoft-graph": (
        settings.SOCIAL_AUTH_MICROSOFT_GRAPH_KEY,
        settings.SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET,
    ),
}


def remote_calendars(emulator) -> list[dict]:
    return list(emulator.calendars.values())


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_first_connect_creates_the_calendar_at_recall_and_locally(
    alice, alice_client, recall_emulator, backend, platform
):
    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert page.status_code == 200
    assert page.request["PATH_INFO"] == CALENDARS_URL
    [remote] = remote_calendars(recall_emulator)
    client_id, client_secret = CLIENT_IDS[backend]
    assert remote["platform"] == platform
    assert remote["oauth_client_id"] == client_id
    assert remote["oauth_client_secret"] == client_secret
    assert remote["oauth_email"] == "alice@work.example"
    # The token Recall holds is the one the provider issued for this account.
    assert recall_emulator.oauth.email_for_refresh_token(remote["oauth_refresh_token"]) == (
        "alice@work.example"
    )

    calendar = Calendar.objects.get()
    assert calendar.user == alice
    assert calendar.platform == platform
    assert str(calendar.recall_id) == remote["id"]
    assert calendar.oauth_email == "alice@work.example"
    assert calendar.status == CalendarStatus.CONNECTING
    assert calendar.social_auth == UserSocialAuth.objects.get(user=alice, provider=backend)
    assert "oauth_refresh_token" not in calendar.raw
    assert "oauth_client_secret" not in calendar.raw
    assert calendar.raw["id"] == remote["id"]
    # Still the same user, logged in, and the page lists the new calendar.
    assert page.wsgi_request.user == alice
    assert "alice@work.example" in page.content.decode()


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_reconnecting_the_same_account_patches_the_new_token_into_the_same_calendar(
    alice, alice_client, recall_emulator, backend, platform
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    [first] = remote_calendars(recall_emulator)

    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    [remote] = remote_calendars(recall_emulator)
    assert remote["id"] == first["id"]
    assert remote["oauth_refresh_token"] != first["oauth_refresh_token"]
    assert recall_emulator.oauth.email_for_refresh_token(remote["oauth_refresh_token"]) == (
        "alice@work.example"
    )
    assert len(recall_emulator.requests_for("POST", "/api/v2/calendars/")) == 1
    [patch] = recall_emulator.requests_for("PATCH", "/api/v2/calendars/")
    assert patch.path == f"/api/v2/calendars/{first['id']}/"
    assert patch.json["oauth_refresh_token"] == remote["oauth_refresh_token"]
    assert Calendar.objects.get().recall_id.hex == first["id"].replace("-", "")


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_second_account_on_the_same_platform_is_a_second_calendar(
    alice, alice_client, recall_emulator, backend, platform
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    page = oauth_connect(alice_client, recall_emulator, backend, "alice@home.example")

    remote = remote_calendars(recall_emulator)
    assert sorted(c["oauth_email"] for c in remote) == ["alice@home.example", "alice@work.example"]
    local = Calendar.objects.filter(user=alice, platform=platform)
    assert sorted(local.values_list("oauth_email", flat=True)) == [
        "alice@home.example",
        "alice@work.example",
    ]
    assert {str(c.recall_id) for c in local} == {c["id"] for c in remote}
    assert UserSocialAuth.objects.filter(user=alice, provider=backend).count() == 2
    content = page.content.decode()
    assert "alice@home.example" in content
    assert "alice@work.example" in content


NO_OFFLINE_ACCESS = {
    "google-oauth2": {"SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS": {}},
    "microsoft-graph": {"SOCIAL_AUTH_MICROSOFT_GRAPH_SCOPE": ["Calendars.Read"]},
}


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_token_response_without_refresh_token_creates_nothing_and_says_what_to_do(
    alice, alice_client, recall_emulator, settings, backend, platform
):
    for name, value in NO_OFFLINE_ACCESS[backend].items():
        setattr(settings, name, value)

    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert page.status_code == 200
    assert page.request["PATH_INFO"] == CALENDARS_URL
    [message] = messages_of(page)
    assert "connect again" in message
    assert "offline access" in message
    assert message in page.content.decode()
    assert recall_emulator.calendars == {}
    assert recall_emulator.requests_for(path="/api/v2/") == []
    assert not Calendar.objects.exists()
    # The association this failed attempt made is undone: nothing half-made is left.
    assert not UserSocialAuth.objects.exists()
    assert page.wsgi_request.user == alice


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_the_stored_refresh_token_is_used_when_the_provider_sends_none(
    alice, alice_client, recall_emulator, settings, backend, platform
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    social = UserSocialAuth.objects.get()
    assert "refresh_token" not in social.extra_data  # Recall holds it; no second copy is kept
    # A host whose social-auth stored a token earlier (before installing the app, say).
    social.extra_data["refresh_token"] = "stored-refresh-token"
    social.save()
    for name, value in NO_OFFLINE_ACCESS[backend].items():
        setattr(settings, name, value)

    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert messages_of(page) == []
    [remote] = remote_calendars(recall_emulator)
    assert remote["oauth_refresh_token"] == "stored-refresh-token"
    social.refresh_from_db()
    assert "refresh_token" not in social.extra_data
    assert Calendar.objects.get().social_auth == social


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_recall_down_gives_a_clear_message_and_keeps_nothing(
    alice, alice_client, recall_emulator, backend, platform
):
    recall_emulator.inject_fault("503", count=50, path="/api/v2/calendars/")

    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert page.status_code == 200
    [message] = messages_of(page)
    assert "try again in a few minutes" in message
    assert "503" not in message
    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()
    assert not UserSocialAuth.objects.exists()


@pytest.mark.parametrize("fault", ["stall", "applied_500"])
@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_timeout_on_the_create_still_connects_exactly_one_calendar(
    alice, alice_client, recall_emulator, settings, backend, platform, fault
):
    """Recall created the calendar but answered after the client gave up (or failed with a 500
    after creating it); the retry carries the same Idempotency-Key, so Recall answers with that
    calendar instead of making a second."""
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TIMEOUT": 0.3}
    recall_emulator.inject_fault(fault, count=1, seconds=1.0, path="/api/v2/calendars/")

    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert messages_of(page) == []
    [remote] = remote_calendars(recall_emulator)
    assert [str(c.recall_id) for c in Calendar.objects.all()] == [remote["id"]]
    assert len(recall_emulator.requests_for("POST", "/api/v2/calendars/")) == 2


@pytest.fixture
def database_refuses_calendars():
    """The database refusing new calendar rows (a constraint, a full disk...)."""

    def refuse(sender, instance, **kwargs):
        if instance.pk is None:
            raise IntegrityError("simulated: the database refused the row")

    pre_save.connect(refuse, sender=Calendar, dispatch_uid="refuse-calendars")
    yield
    pre_save.disconnect(sender=Calendar, dispatch_uid="refuse-calendars")


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_failed_local_save_deletes_the_calendar_at_recall_again(
    alice, alice_client, recall_emulator, database_refuses_calendars, backend, platform
):
    page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert page.status_code == 200
    [message] = messages_of(page)
    assert "Nothing was saved" in message
    [created] = recall_emulator.requests_for("POST", "/api/v2/calendars/")
    [deleted] = recall_emulator.requests_for("DELETE", "/api/v2/calendars/")
    assert created.status == 201
    assert deleted.status == 204
    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()
    assert not UserSocialAuth.objects.exists()


def test_recall_refusing_the_calendar_shows_recalls_reason(
    alice, alice_client, recall_emulator, settings
):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "x" * 2001  # longer than Recall accepts

    page = oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")

    [message] = messages_of(page)
    assert message.startswith("Your calendar could not be connected:")
    assert "Please try connecting again." in message
    assert "x" * 50 not in message
    assert not Calendar.objects.exists()


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
@pytest.mark.recall_emulator(webhooks=False)  # this test drives each refresh itself
def test_reconnecting_a_disconnected_calendar_clears_the_disconnection(
    alice, alice_client, recall_emulator, backend, platform
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    calendar = Calendar.objects.get()
    recall_id = str(calendar.recall_id)
    recall_emulator.connect_calendar(recall_id, email="alice@work.example")
    recall_emulator.disconnect_calendar(recall_id, details={"error_code": "invalid_grant"})
    refresh_calendar(calendar)
    assert calendar.status == CalendarStatus.DISCONNECTED

    page = alice_client.get(CALENDARS_URL)
    content = page.content.decode()
    assert "invalid_grant" in content
    assert "Reconnect" in content

    connected = []
    signals.calendar_connected.connect(
        lambda sender, calendar, **kw: connected.append(calendar.pk), weak=False, dispatch_uid="t"
    )
    try:
        page = oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    finally:
        signals.calendar_connected.disconnect(dispatch_uid="t")

    [patch] = recall_emulator.requests_for("PATCH", f"/api/v2/calendars/{recall_id}/")
    assert patch.status == 200
    assert recall_emulator.calendars[recall_id]["status"] == "connected"
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.CONNECTED
    assert calendar.disconnect_reason == ""
    assert connected == [calendar.pk]
    assert "Reconnect" not in page.content.decode()
    assert Calendar.objects.count() == 1


def test_reconnecting_a_calendar_deleted_at_recall_recreates_it(
    alice, alice_client, recall_emulator, recall_http
):
    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")
    calendar = Calendar.objects.get()
    calendar.recording_policy = "all"
    calendar.save()
    old_id = str(calendar.recall_id)
    assert recall_http.delete(f"/api/v2/calendars/{old_id}/").status_code == 204

    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")

    [remote] = remote_calendars(recall_emulator)
    calendar.refresh_from_db()
    assert str(calendar.recall_id) == remote["id"] != old_id
    assert calendar.recording_policy == "all"
    assert Calendar.objects.count() == 1


def test_an_account_linked_to_another_user_is_refused_not_logged_in(client, recall_emulator):
    bob = builders.user("bob", "bob@site.example")
    carol = builders.user("carol", "carol@site.example")
    client.force_login(bob)
    oauth_connect(client, recall_emulator, "google-oauth2", "shared@work.example")
    client.force_login(carol)

    page = oauth_connect(client, recall_emulator, "google-oauth2", "shared@work.example")

    assert page.wsgi_request.user == carol
    assert messages_of(page) == ["This identity is already associated with another account."]
    assert list(Calendar.objects.values_list("user__username", flat=True)) == ["bob"]
    assert len(recall_emulator.calendars) == 1


def test_other_backends_are_left_alone(alice, alice_client, recall_emulator, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "PLATFORMS": {}}

    page = oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")

    assert messages_of(page) == []
    assert UserSocialAuth.objects.filter(user=alice).count() == 1
    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()


def test_consent_denied_is_a_message_not_an_error(alice, alice_client, recall_emulator):
    page = oauth_connect(
        alice_client, recall_emulator, "google-oauth2", "alice@work.example", allow=False
    )

    assert page.status_code == 200
    assert messages_of(page)
    assert recall_emulator.calendars == {}


def test_a_racing_second_consent_for_one_account_keeps_one_calendar(alice, recall_emulator):
    """Two consent callbacks of one account that both found no calendar: the unique account
    constraint lets one row win, and the loser's calendar is deleted at Recall again."""
    social = UserSocialAuth.objects.create(
        user=alice, provider="google-oauth2", uid="alice@x.example"
    )

    def winner_saves_first(sender, instance, **kwargs):
        pre_save.disconnect(winner_saves_first, sender=Calendar)
        builders.calendar(alice, platform=instance.platform, social_auth=social)

    pre_save.connect(winner_saves_first, sender=Calendar, weak=False)
    try:
        with pytest.raises(IntegrityError):
            connect_calendar_for(
                alice, "google_calendar", "refresh", "client", "secret", "", social
            )
    finally:
        pre_save.disconnect(winner_saves_first, sender=Calendar)

    [created] = recall_emulator.requests_for("POST", "/api/v2/calendars/")
    assert created.status == 201
    assert recall_emulator.calendars == {}  # the loser's Recall calendar is gone again
