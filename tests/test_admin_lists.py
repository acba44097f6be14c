"""The admin's lists, filters, search and detail pages, as a superuser sees them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar.models import (
    BotOutcome,
    Calendar,
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    Platform,
    RecordingPolicy,
    WebhookDelivery,
)
from tests import builders

pytestmark = pytest.mark.django_db

CALENDARS = reverse("admin:recall_calendar_calendar_changelist")
EVENTS = reverse("admin:recall_calendar_calendarevent_changelist")
DELIVERIES = reverse("admin:recall_calendar_webhookdelivery_changelist")


def future_bot(start: datetime) -> dict:
    return {
        "bot_id": str(uuid.uuid4()),
        "start_time": start.isoformat(),
        "deduplication_key": "k",
        "meeting_url": "https://meet.google.com/abc-defg-hij",
    }


def listed(response) -> list:
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


@pytest.fixture
def alice(db) -> User:
    return builders.user("alice", "alice@corp.example")


@pytest.fixture
def bob(db) -> User:
    return builders.user("bob", "bob@other.example")


# --- calendars ------------------------------------------------------------------------------------


def test_calendar_list_shows_owner_health_and_counts(admin_client, alice):
    calendar = builders.calendar(
        alice, "alice.cal@corp.example", recording_policy=RecordingPolicy.ORGANIZER
    )
    calendar.last_synced_at = timezone.now()
    calendar.save()
    soon = timezone.now() + timedelta(hours=2)
    builders.events(calendar, 1, start=soon)  # upcoming, no bot
    builders.events(calendar, 2, start=soon, bots=[future_bot(soon)])  # upcoming with bots
    past = timezone.now() - timedelta(days=1)
    builders.events(calendar, 1, start=past, bots=[future_bot(past)])  # ended: not counted
    builders.events(calendar, 1, start=soon, is_deleted=True, bots=[future_bot(soon)])  # deleted
    builders.calendar(alice, "empty@corp.example", platform=Platform.MICROSOFT_OUTLOOK)

    response = admin_client.get(CALENDARS)
    rows = {row.platform_email: row for row in listed(response)}
    assert (
        rows["alice.cal@corp.example"].upcoming_count,
        rows["alice.cal@corp.example"].scheduled_bot_count,
    ) == (3, 2)
    assert (
        rows["empty@corp.example"].upcoming_count,
        rows["empty@corp.example"].scheduled_bot_count,
    ) == (0, 0)
    html = response.content.decode()
    for text in (
        "alice",
        "Google Calendar",
        "alice.cal@corp.example",
        "Connected",
        "Only meetings I organize",
    ):
        assert text in html
    # Sorting by the annotated counts works.
    ordered = listed(admin_client.get(CALENDARS, {"o": "-6"}))
    assert ordered[0].platform_email == "alice.cal@corp.example"


def test_calendar_filters_and_search(admin_client, alice, bob):
    google = builders.calendar(alice, "a@corp.example")
    outlook = builders.calendar(
        bob,
        "b@other.example",
        platform=Platform.MICROSOFT_OUTLOOK,
        status=CalendarStatus.DISCONNECTED,
        recording_policy=RecordingPolicy.ALL,
    )

    def found(**params) -> set:
        return {c.pk for c in listed(admin_client.get(CALENDARS, params))}

    assert found(platform__exact="microsoft_outlook") == {outlook.pk}
    assert found(status__exact="connected") == {google.pk}
    assert found(recording_policy__exact="all") == {outlook.pk}
    assert found(q="alice") == {google.pk}  # owner username
    assert found(q="bob@other.example") == {outlook.pk}  # owner email
    assert found(q="a@corp") == {google.pk}  # calendar email
    assert found(q="nobody-matches") == set()


def test_calendar_detail_is_read_only_for_recall_fields_and_shows_raw_escaped(admin_client, alice):
    calendar = builders.calendar(
        alice,
        raw={"id": "x", "platform_email": "<script>alert(1)</script>", "nested": {"k": [1, 2]}},
        status_changes=[{"status": "connected", "created_at": "2026-01-01T00:00:00Z"}],
    )
    response = admin_client.get(
        reverse("admin:recall_calendar_calendar_change", args=[calendar.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {
        "recording_policy",
        "skip_declined",
        "min_attendees",
        "skip_title_keywords",
        "series_overrides",
    }
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<pre class="recall-json">{\n  &quot;id&quot;: &quot;x&quot;,' in html
    assert str(calendar.recall_id) in html

    # The policy fields save; Recall's fields ignore what is posted for them.
    response = admin_client.post(
        reverse("admin:recall_calendar_calendar_change", args=[calendar.pk]),
        {
            "recording_policy": "external",
            "skip_declined": "",
            "min_attendees": "2",
            "series_overrides": "{}",
            "status": "disconnected",
            "platform_email": "hacked@example.com",
        },
    )
    assert response.status_code == 302
    calendar.refresh_from_db()
    assert (calendar.recording_policy, calendar.skip_declined, calendar.min_attendees) == (
        "external",
        False,
        2,
    )
    assert (calendar.status, calendar.platform_email) == ("connected", "alice@example.com")


def test_calendars_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:recall_calendar_calendar_add")).status_code == 403
    assert admin_client.get(reverse("admin:recall_calendar_calendarevent_add")).status_code == 403


# --- events -------------------------------------------------------------------------------------


def test_event_list_columns_in_the_admins_time_zone(admin_client, alice, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    calendar = builders.calendar(alice)
    start = (timezone.now() + timedelta(days=2)).replace(hour=6, minute=0, second=0, microsecond=0)
    builders.events(
        calendar, 1, start=start, minutes=90, title="Board meeting", bots=[future_bot(start)]
    )
    builders.events(
        calendar, 1, start=start, title="Coffee", meeting_url=None, meeting_platform=None
    )
    builders.events(calendar, 1, start=start, title="Standup")
    builders.events(calendar, 1, start=start - timedelta(days=5), title="Retro")
    builders.events(calendar, 1, start=start, title="", is_all_day=True, minutes=24 * 60)

    response = admin_client.get(EVENTS)
    html = response.content.decode()
    assert len(listed(response)) == 5
    local = start.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local:%a %-d %b %Y}, 15:00 JST" in html  # 06:00 UTC is 15:00 in Tokyo
    assert ">Google Meet<" in html
    assert "1 h 30 min" in html and "all day" in html and "(no title)" in html
    assert ">alice<" in html
    assert "Scheduled" in html
    assert "Not possible: no meeting link" in html
    assert "Not possible: ended" in html
    assert "None: policy: recording is off" in html


def test_event_when_filter_uses_the_admins_today(admin_client, alice, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    tokyo = ZoneInfo("Asia/Tokyo")
    today = timezone.localdate(timezone.now(), tokyo)
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=tokyo)
    calendar = builders.calendar(alice)
    (early,) = builders.events(calendar, 1, start=midnight + timedelta(minutes=30), title="early")
    (tomorrow,) = builders.events(calendar, 1, start=midnight + timedelta(days=1, minutes=5))
    (yesterday,) = builders.events(calendar, 1, start=midnight - timedelta(hours=1), minutes=30)
    (future,) = builders.events(calendar, 1, start=timezone.now() + timedelta(days=3))
    (deleted,) = builders.events(
        calendar, 1, start=timezone.now() + timedelta(days=3), is_deleted=True
    )

    def found(**params) -> set:
        return {e.pk for e in listed(admin_client.get(EVENTS, params))}

    assert found(when="today") == {early.pk}
    assert found(when="upcoming") == {tomorrow.pk, future.pk} | (
        {early.pk} if early.end_time > timezone.now() else set()
    )
    assert found(when="past") >= {yesterday.pk}
    assert future.pk not in found(when="past") and deleted.pk not in found(when="upcoming")


def test_event_filters(admin_client, alice, bob):
    a_cal, b_cal = builders.calendar(alice), builders.calendar(bob)
    soon = timezone.now() + timedelta(hours=3)
    (meet,) = builders.events(a_cal, 1, start=soon)
    (zoom,) = builders.events(
        b_cal, 1, start=soon, meeting_url="https://zoom.us/j/1", meeting_platform="zoom"
    )
    (no_link,) = builders.events(a_cal, 1, start=soon, meeting_url=None, meeting_platform=None)
    (with_bot,) = builders.events(b_cal, 1, start=soon, bots=[future_bot(soon)])
    (deleted,) = builders.events(a_cal, 1, start=soon, is_deleted=True)

    def found(**params) -> set:
        return {e.pk for e in listed(admin_client.get(EVENTS, params))}

    assert found(meeting_platform="zoom") == {zoom.pk}
    assert found(meeting_platform="none") == {no_link.pk}
    assert found(has_meeting_url="no") == {no_link.pk}
    assert no_link.pk not in found(has_meeting_url="yes")
    assert found(has_bot="yes") == {with_bot.pk}
    assert with_bot.pk not in found(has_bot="no")
    assert found(is_deleted__exact="1") == {deleted.pk}
    assert found(calendar__id__exact=str(b_cal.pk)) == {zoom.pk, with_bot.pk}
    assert found(**{"start_time__year": str(soon.year), "start_time__month": str(soon.month)}) >= {
        meet.pk
    }
    # An unknown filter value lists everything rather than failing.
    assert len(found(when="someday")) == 5


def test_event_search(admin_client, alice, bob):
    a_cal, b_cal = builders.calendar(alice), builders.calendar(bob)
    (review,) = builders.events(a_cal, 1, title="Quarterly review", ical_uid="uid-123@google.com")
    (sync,) = builders.events(
        b_cal, 1, title="Sync", meeting_url="https://zoom.us/j/98765", meeting_platform="zoom"
    )

    def found(q: str) -> set:
        return {e.pk for e in listed(admin_client.get(EVENTS, {"q": q}))}

    assert found("quarterly") == {review.pk}
    assert found("zoom.us/j/98765") == {sync.pk}
    assert found("uid-123") == {review.pk}
    assert found("bob") == {sync.pk}
    assert found("alice@corp.example") == {review.pk}
    assert found("%") == set()  # LIKE wildcards are matched literally


def test_event_detail_is_read_only_except_recording_choices(admin_client, alice):
    (event,) = builders.events(builders.calendar(alice), 1, raw={"summary": "<b>x</b>", "id": "g1"})
    url = reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"record_override", "bot_config"}
    assert "&lt;b&gt;x&lt;/b&gt;" in response.content.decode()


# --- webhook deliveries ---------------------------------------------------------------------------


def test_deliveries_are_read_only(admin_client, alice):
    (delivery,) = builders.deliveries(builders.calendar(alice), 1)
    change = reverse("admin:recall_calendar_webhookdelivery_change", args=[delivery.pk])
    response = admin_client.get(change)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html and response.context["adminform"].form.fields == {}
    assert delivery.message_id in html
    assert admin_client.post(change, {"status": "failed"}).status_code == 403
    assert admin_client.get(reverse("admin:recall_calendar_webhookdelivery_add")).status_code == 403
    delete = reverse("admin:recall_calendar_webhookdelivery_delete", args=[delivery.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED


def test_delivery_filters_and_search(admin_client, alice):
    calendar = builders.calendar(alice, "alice.cal@corp.example")
    (processed,) = builders.deliveries(calendar, 1)
    (failed,) = builders.deliveries(calendar, 1, status=DeliveryStatus.FAILED, last_error="boom")
    (update,) = builders.deliveries(None, 1, event_type="calendar.update")

    def found(**params) -> set:
        return {d.pk for d in listed(admin_client.get(DELIVERIES, params))}

    assert found(status__exact="failed") == {failed.pk}
    assert found(event_type="calendar.update") == {update.pk}
    assert found(event_type__exact="calendar.update") == {update.pk}
    assert found(q=processed.message_id) == {processed.pk}
    assert found(q=str(calendar.recall_id)) == {processed.pk, failed.pk}
    assert found(q="alice.cal@corp") == {processed.pk, failed.pk}
    assert found(q=update.calendar_recall_id) == {update.pk}


# --- query counts ---------------------------------------------------------------------------------


def _changelist_queries(client, url: str, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(15) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("mode", ["managed", "self_managed"])
@pytest.mark.parametrize(
    "url", [CALENDARS, EVENTS, DELIVERIES], ids=["calendars", "events", "deliveries"]
)
def test_changelists_cost_the_same_queries_for_10_and_500_rows(
    admin_client, django_assert_max_num_queries, settings, url, mode
):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SCHEDULING_MODE": mode}

    def grow(total: int) -> None:
        have = Calendar.objects.count()
        users = User.objects.bulk_create(User(username=f"owner{i}") for i in range(have, total))
        calendars = Calendar.objects.bulk_create(
            builders.calendar(user, save=False) for user in users
        )
        soon = timezone.now() + timedelta(hours=1)
        events = CalendarEvent.objects.bulk_create(
            builders.event(
                calendar,
                start=soon,
                save=False,
                meeting_url="https://zoom.us/j/1",
                bots=[future_bot(soon)] * (i % 2),
            )
            for i, calendar in enumerate(calendars)
        )
        if mode == "self_managed":
            for event in events[1::2]:
                builders.self_managed_bot(event)
        reported = events[::3]  # a third of the meetings show what their bot did
        outcomes = BotOutcome.objects.bulk_create(
            BotOutcome(
                recall_bot_id=uuid.uuid4(),
                status="fatal",
                sub_code="meeting_not_found",
                status_at=soon,
                first_status_at=soon,
                failure_status="fatal",
                failure_sub_code="meeting_not_found",
                result="failed",
            )
            for _ in reported
        )
        for event, outcome in zip(reported, outcomes, strict=True):
            event.bot_outcome = outcome
        CalendarEvent.objects.bulk_update(reported, ["bot_outcome"])
        WebhookDelivery.objects.bulk_create(
            builders.delivery(c, save=False, event_type="x", payload={}) for c in calendars
        )

    grow(10)
    small = _changelist_queries(admin_client, url, django_assert_max_num_queries)
    grow(500)
    large = _changelist_queries(admin_client, url, django_assert_max_num_queries)
    assert small == large


@pytest.mark.parametrize("value", ['["standup"]', '"always"', '{"standup": "sometimes"}'])
def test_series_overrides_must_map_series_ids_to_always_or_never(
    admin_client, alice, recall_emulator, value
):
    """Any other JSON was saved, then every policy check of the calendar (each sync, the API's
    bot state) failed on it."""
    calendar = builders.calendar(alice, series_overrides={"weekly": "never"})
    response = admin_client.post(
        reverse("admin:recall_calendar_calendar_change", args=[calendar.pk]),
        {"recording_policy": "all", "min_attendees": "0", "series_overrides": value},
    )
    assert response.status_code == 200
    assert "series_overrides" in response.context["adminform"].form.errors
    calendar.refresh_from_db()
    assert (calendar.recording_policy, calendar.series_overrides) == ("off", {"weekly": "never"})
