"""Who may do what in the admin, and no admin page ever shows a secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar.models import Calendar, CalendarEvent, WebhookDelivery
from tests import builders

pytestmark = pytest.mark.django_db

CALENDARS = reverse("admin:recall_calendar_calendar_changelist")
EVENTS = reverse("admin:recall_calendar_calendarevent_changelist")
DELIVERIES = reverse("admin:recall_calendar_webhookdelivery_changelist")
CHANGELISTS = {"calendar": CALENDARS, "calendarevent": EVENTS, "webhookdelivery": DELIVERIES}
VIEW = tuple(f"view_{model}" for model in CHANGELISTS)
CHANGE = tuple(f"change_{model}" for model in CHANGELISTS)

API_KEY = "api-key-NEVER-SHOWN-7c1f"
CLIENT_SECRET = "client-secret-NEVER-SHOWN-93a2"
REFRESH_TOKEN = "refresh-token-NEVER-SHOWN-55e0"
SECRETS = (API_KEY, CLIENT_SECRET, REFRESH_TOKEN)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def action_names(response) -> set[str]:
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


# --- permissions ---------------------------------------------------------------------------------


def test_view_only_staff_sees_the_lists_but_no_actions(recall_emulator):
    owner = builders.user("alice", "alice@corp.example")
    calendar = builders.connected_calendar(recall_emulator, owner, "alice@corp.example")
    (event,) = builders.synced_events(
        recall_emulator, calendar, {"start_time": timezone.now() + timedelta(hours=2)}
    )
    (delivery,) = builders.deliveries(calendar, 1)
    viewer = logged_in(builders.user("viewer", perms=VIEW))

    for url in CHANGELISTS.values():
        response = viewer.get(url)
        assert response.status_code == 200
        assert action_names(response) == set()
        assert 'name="action"' not in response.content.decode()

    # Posting an action anyway does nothing.
    requests_before = len(recall_emulator.requests)
    for url, action, obj in [
        (EVENTS, "schedule_bot", event),
        (EVENTS, "remove_bot", event),
        (EVENTS, "send_new_bot", event),
        (CALENDARS, "disconnect", calendar),
        (CALENDARS, "sync_now", calendar),
        (DELIVERIES, "replay", delivery),
    ]:
        data = {"action": action, "_selected_action": [obj.pk], "post": "yes", "bot_name": "X"}
        assert viewer.post(url, data).status_code in (200, 302, 403)
    assert len(recall_emulator.requests) == requests_before
    assert recall_emulator.bots == {} and Calendar.objects.filter(pk=calendar.pk).exists()

    # Detail pages are view-only: nothing to save.
    page = viewer.get(reverse("admin:recall_calendar_calendar_change", args=[calendar.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    url = reverse("admin:recall_calendar_calendar_change", args=[calendar.pk])
    assert viewer.post(url, {"recording_policy": "all"}).status_code == 403
    assert Calendar.objects.get(pk=calendar.pk).recording_policy == "off"


def test_change_permission_unlocks_the_actions(db):
    builders.calendar(builders.user("alice"))
    editor = logged_in(builders.user("editor", perms=VIEW + CHANGE))
    assert action_names(editor.get(CALENDARS)) == {
        "refresh_status",
        "sync_now",
        "apply_recording_policy",
        "disconnect",
    }
    assert action_names(editor.get(EVENTS)) == {"schedule_bot", "remove_bot", "send_new_bot"}
    assert action_names(editor.get(DELIVERIES)) == {"replay"}


def test_staff_without_permissions_sees_nothing(db):
    nobody = logged_in(builders.user("nobody", staff=True))
    for url in CHANGELISTS.values():
        assert nobody.get(url).status_code == 403
    assert Client().get(CALENDARS).status_code == 302  # anonymous: to the login page


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.recall_emulator(api_key=API_KEY, webhooks=False)
def test_no_admin_page_shows_a_secret(admin_client, recall_emulator):
    owner = builders.user("alice", "alice@corp.example")
    calendar = builders.connected_calendar(
        recall_emulator,
        owner,
        "alice@corp.example",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
    )
    # Recall echoes the credentials; they reached the emulator but must stop there.
    assert (
        recall_emulator.calendars[str(calendar.recall_id)]["oauth_refresh_token"] == REFRESH_TOKEN
    )
    soon = timezone.now() + timedelta(hours=2)
    events = builders.synced_events(
        recall_emulator, calendar, {"start_time": soon}, {"start_time": soon}
    )
    # Rows written by hand or by older code: rendering must mask what storing should have stripped.
    planted = builders.calendar(
        owner,
        "planted@corp.example",
        raw={
            "oauth_client_secret": CLIENT_SECRET,
            "nested": [{"oauth_refresh_token": REFRESH_TOKEN}],
        },
        status_changes=[{"status": "connected", "refresh_token": REFRESH_TOKEN}],
    )
    (planted_event,) = builders.events(planted, 1, raw={"access_token": API_KEY})
    (delivery,) = builders.deliveries(calendar, 1, event_type="calendar.update")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        payload={"event": "calendar.update", "data": {"api_key": API_KEY}}
    )

    pages = [
        admin_client.get(reverse("admin:index")),
        admin_client.get(reverse("admin:app_list", args=["recall_calendar"])),
        *(admin_client.get(url) for url in CHANGELISTS.values()),
        admin_client.get(CALENDARS, {"q": "alice"}),
        *(
            admin_client.get(
                reverse(f"admin:recall_calendar_{obj._meta.model_name}_change", args=[obj.pk])
            )
            for obj in [calendar, planted, *events, planted_event, delivery]
        ),
        # The intermediate pages.
        admin_client.post(
            EVENTS,
            {"action": "schedule_bot", "_selected_action": [e.pk for e in events], "index": 0},
        ),
        admin_client.post(
            CALENDARS, {"action": "disconnect", "_selected_action": [calendar.pk], "index": 0}
        ),
    ]
    # Each action, followed to the page that shows its messages.
    for url, action, objs, extra in [
        (EVENTS, "schedule_bot", events, {"post": "yes", "bot_name": "B"}),
        (EVENTS, "remove_bot", events, {}),
        (CALENDARS, "refresh_status", [calendar, planted], {}),
        (CALENDARS, "sync_now", [calendar, planted], {}),
        (CALENDARS, "apply_recording_policy", [calendar, planted], {}),
        (DELIVERIES, "replay", [delivery], {}),
        (CALENDARS, "disconnect", [calendar], {"post": "yes"}),
    ]:
        data = {"action": action, "_selected_action": [o.pk for o in objs], **extra}
        pages.append(admin_client.post(url, data, follow=True))

    assert recall_emulator.requests_for("POST", "/bot/")  # the actions really ran
    assert CalendarEvent.objects.filter(calendar=planted).exists()
    for response in pages:
        assert response.status_code == 200, response.request
        html = response.content.decode()
        for secret in SECRETS:
            assert secret not in html, (response.request["PATH_INFO"], secret)
    masked = admin_client.get(reverse("admin:recall_calendar_calendar_change", args=[planted.pk]))
    assert "********" in masked.content.decode()
