"""Connecting a calendar is never a sign-up or sign-in door, and keeps no OAuth token behind.

social-auth's real views and pipeline run against the emulator's OAuth providers and Recall.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError
from django.db.models.signals import pre_save
from django.urls import reverse
from social_django.models import UserSocialAuth

from django_recall_calendar.models import Calendar

from .connect_support import PROVIDERS, messages_of, oauth_connect

pytestmark = pytest.mark.django_db

TOKENS = {"refresh_token", "access_token", "id_token"}
SIGN_IN_FIRST = "Please sign in first, then connect your calendar from your account's page."


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_an_anonymous_consent_creates_no_user_and_no_calendar(
    client, django_user_model, recall_emulator, backend, platform
):
    page = oauth_connect(client, recall_emulator, backend, "stranger@work.example")

    assert messages_of(page) == [SIGN_IN_FIRST]
    assert not page.wsgi_request.user.is_authenticated
    assert not django_user_model.objects.exists()
    assert not UserSocialAuth.objects.exists()
    assert not Calendar.objects.exists()
    assert recall_emulator.requests_for(path="/api/v2/") == []


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_an_anonymous_consent_for_a_linked_account_never_logs_into_its_user(
    client, django_user_model, recall_emulator, backend, platform
):
    bob = django_user_model.objects.create_user("bob", "bob@site.example")
    client.force_login(bob)
    oauth_connect(client, recall_emulator, backend, "bob@work.example")
    [remote] = recall_emulator.calendars.values()
    token = remote["oauth_refresh_token"]
    client.logout()
    recall_emulator.requests.clear()

    page = oauth_connect(client, recall_emulator, backend, "bob@work.example")

    assert messages_of(page) == [SIGN_IN_FIRST]
    assert not page.wsgi_request.user.is_authenticated
    assert "_auth_user_id" not in client.session
    # Bob's calendar at Recall keeps his token: the visitor's consent changed nothing.
    assert recall_emulator.requests_for(path="/api/v2/") == []
    assert recall_emulator.calendars[remote["id"]]["oauth_refresh_token"] == token
    assert list(Calendar.objects.values_list("user__username", flat=True)) == ["bob"]


def test_other_backends_may_still_sign_users_in(client, recall_emulator, settings):
    """A host's own "Sign in with ..." (a backend not in PLATFORMS) is not the connect flow."""
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "PLATFORMS": {}}

    page = oauth_connect(client, recall_emulator, "google-oauth2", "someone@work.example")

    assert messages_of(page) == []
    assert page.wsgi_request.user.is_authenticated
    assert not Calendar.objects.exists()


def stored_tokens(social: UserSocialAuth) -> set[str]:
    social.refresh_from_db()
    return TOKENS & set(social.extra_data)


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_no_token_is_kept_after_a_connect_and_a_reconnect(
    alice, alice_client, recall_emulator, backend, platform
):
    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")
    social = UserSocialAuth.objects.get()
    assert stored_tokens(social) == set()
    assert social.extra_data  # social-auth did store its data; only the tokens are gone

    oauth_connect(alice_client, recall_emulator, backend, "alice@work.example")

    assert stored_tokens(social) == set()
    assert Calendar.objects.get().social_auth == social


def test_view_only_staff_read_no_token_in_social_auths_admin(
    alice, alice_client, client, django_user_model, recall_emulator
):
    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")
    social = UserSocialAuth.objects.get()
    staff = django_user_model.objects.create_user("viewer", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_usersocialauth"))
    client.force_login(staff)

    page = client.get(reverse("admin:social_django_usersocialauth_change", args=[social.pk]))

    assert page.status_code == 200
    assert "auth_time" in page.content.decode()  # the page does show extra_data
    tokens = recall_emulator.oauth.issued_tokens()
    assert tokens and [token for token in tokens if token in page.content.decode()] == []


@pytest.fixture
def existing_calendars_refused():
    """The database refusing to save a calendar row that exists already (a reconnect)."""

    def refuse(sender, instance, **kwargs):
        if instance.pk is not None:
            raise IntegrityError("simulated: the database refused the row")

    pre_save.connect(refuse, sender=Calendar, dispatch_uid="refuse-existing-calendars")
    yield
    pre_save.disconnect(sender=Calendar, dispatch_uid="refuse-existing-calendars")


def recall_refuses(emulator, settings, request):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "x" * 2001  # longer than Recall accepts


def recall_down(emulator, settings, request):
    emulator.inject_fault("503", count=50, path="/api/v2/calendars/")


def local_save_fails(emulator, settings, request):
    request.getfixturevalue("existing_calendars_refused")


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (recall_refuses, "Your calendar could not be connected:"),
        (recall_down, "try again in a few minutes"),
        (local_save_fails, "try again in a few minutes"),
    ],
    ids=["recall refuses", "recall down", "local save fails"],
)
def test_a_failed_reconnect_keeps_no_token(
    alice, alice_client, recall_emulator, settings, request, failure, says
):
    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")
    social = UserSocialAuth.objects.get()
    failure(recall_emulator, settings, request)

    page = oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")

    [message] = messages_of(page)
    assert says in message
    assert stored_tokens(social) == set()


@pytest.mark.parametrize(
    "failure", [recall_refuses, recall_down], ids=["recall refuses", "recall down"]
)
def test_a_failed_first_connect_keeps_no_token(
    alice, alice_client, recall_emulator, settings, request, failure
):
    failure(recall_emulator, settings, request)

    oauth_connect(alice_client, recall_emulator, "google-oauth2", "alice@work.example")

    # The association of the failed attempt is gone, and with it every token it held.
    assert not UserSocialAuth.objects.exists()
    assert not Calendar.objects.exists()
