"""The Recall emulator behaves as Recall does: lifecycle, listing, scheduling, bots, errors.

Everything goes over real HTTP (``recall_http``); control methods stand in for what users do in
their calendars. Webhooks and faults are in test_emulator_webhooks.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from django_recall_calendar.testing import RecallEmulator
from django_recall_calendar.testing.demo_data import working_week

CREATE = {
    "platform": "google_calendar",
    "oauth_client_id": "client-id",
    "oauth_client_secret": "client-secret",
    "oauth_refresh_token": "refresh-token",
}


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def all_pages(http, url: str, **params) -> tuple[list[dict], list[dict]]:
    """Every result following ``next``, and the raw pages."""
    pages = [http.get(url, params=params).json()]
    while pages[-1]["next"]:
        pages.append(http.get(pages[-1]["next"]).json())
    return [row for page in pages for row in page["results"]], pages


@pytest.fixture
def calendar(recall_emulator):
    created = recall_emulator.create_calendar(oauth_email="owner@example.com")
    return recall_emulator.connect_calendar(created["id"], email="owner@example.com")


# ----- calendars --------------------------------------------------------------------------------
def test_created_calendar_is_connecting_without_email_and_echoes_secrets(recall_http):
    response = recall_http.post("/api/v2/calendars/", json=CREATE)

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "connecting"
    assert body["platform_email"] is None
    assert body["status_changes"] == []
    assert body["oauth_client_secret"] == "client-secret"
    assert body["oauth_refresh_token"] == "refresh-token"
    assert recall_http.get(f"/api/v2/calendars/{body['id']}/").json() == body


def test_connect_then_disconnect_grows_status_changes_and_notifies(recall_emulator, recall_http):
    calendar_id = recall_http.post("/api/v2/calendars/", json=CREATE).json()["id"]

    recall_emulator.connect_calendar(calendar_id, email="jo@example.com")
    recall_emulator.disconnect_calendar(calendar_id, details={"error_code": "invalid_grant"})

    body = recall_http.get(f"/api/v2/calendars/{calendar_id}/").json()
    assert body["status"] == "disconnected"
    assert body["platform_email"] == "jo@example.com"
    assert [c["status"] for c in body["status_changes"]] == ["connected", "disconnected"]
    # Only the status, its time and the details the test named: no key of the emulator's own.
    assert [set(change) for change in body["status_changes"]] == [
        {"status", "created_at"},
        {"status", "created_at", "error_code"},
    ]
    assert body["status_changes"][1]["error_code"] == "invalid_grant"
    updates = [d for d in recall_emulator.deliveries if d.event == "calendar.update"]
    assert [d.payload["data"] for d in updates] == [{"calendar_id": calendar_id}] * 2


def test_the_former_reason_shorthand_still_works_and_warns(recall_emulator, calendar):
    with pytest.warns(DeprecationWarning, match="details="):
        changed = recall_emulator.disconnect_calendar(calendar["id"], reason="invalid_grant")

    assert "reason" not in changed["status_changes"][-1]
    assert changed["status_changes"][-1]["error_code"] == "invalid_grant"


@pytest.mark.parametrize(
    "patch", [{}, {"oauth_refresh_token": "new-token"}], ids=["empty", "new-token"]
)
def test_patch_reconnects_a_disconnected_calendar(recall_emulator, recall_http, calendar, patch):
    recall_emulator.disconnect_calendar(calendar["id"])

    response = recall_http.patch(f"/api/v2/calendars/{calendar['id']}/", json=patch)

    assert response.status_code == 200
    assert response.json()["status"] == "connected"
    assert len(response.json()["status_changes"]) == 3
    assert recall_emulator.deliveries[-1].event == "calendar.update"


def test_patch_of_a_connected_calendar_changes_fields_only(recall_emulator, recall_http, calendar):
    sent = len(recall_emulator.deliveries)

    body = recall_http.patch(
        f"/api/v2/calendars/{calendar['id']}/", json={"oauth_client_secret": "rotated"}
    ).json()

    assert body["oauth_client_secret"] == "rotated"
    assert body["status"] == "connected"
    assert len(recall_emulator.deliveries) == sent


def test_delete_removes_calendar_events_and_bots_without_webhook(
    recall_emulator, recall_http, calendar
):
    event = recall_emulator.add_event(calendar["id"])
    recall_http.post(
        f"/api/v2/calendar-events/{event['id']}/bot/",
        json={"deduplication_key": "k", "bot_config": {}},
    )
    sent = len(recall_emulator.deliveries)

    assert recall_http.delete(f"/api/v2/calendars/{calendar['id']}/").status_code == 204

    assert recall_http.get(f"/api/v2/calendars/{calendar['id']}/").status_code == 404
    assert recall_http.get(f"/api/v2/calendar-events/{event['id']}/").status_code == 404
    assert recall_emulator.bots == {}
    assert len(recall_emulator.deliveries) == sent
    assert recall_http.delete(f"/api/v2/calendars/{calendar['id']}/").status_code == 404


def test_access_token_and_its_refusal_for_a_disconnected_calendar(
    recall_emulator, recall_http, calendar
):
    url = f"/api/v2/calendars/{calendar['id']}/access-token/"
    body = recall_http.post(url).json()
    assert body["token"] and datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)

    recall_emulator.disconnect_calendar(calendar["id"])
    refused = recall_http.post(url)
    assert refused.status_code == 400
    assert refused.json()["code"] == "bad_refresh_token"


@pytest.mark.recall_emulator(unruly=False)
def test_calendar_list_filters(recall_emulator, recall_http):
    google = recall_emulator.create_calendar("google_calendar")
    outlook = recall_emulator.create_calendar("microsoft_outlook")
    recall_emulator.connect_calendar(outlook["id"], email="Pat@Example.com")
    later = recall_emulator.create_calendar("google_calendar")

    def ids(**params):
        rows, _ = all_pages(recall_http, "/api/v2/calendars/", **params)
        return [row["id"] for row in rows]

    assert ids() == [google["id"], outlook["id"], later["id"]]
    assert ids(platform="microsoft_outlook") == [outlook["id"]]
    assert ids(status="connecting") == [google["id"], later["id"]]
    assert ids(email="pat@example.com") == [outlook["id"]]
    assert ids(created_at__gte=later["created_at"]) == [later["id"]]
    refused = recall_http.get("/api/v2/calendars/", params={"status": "sleeping"})
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"status": ['"sleeping" is not a valid choice.']}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CREATE, "platform": "yahoo"}, "platform"),
        ({key: value for key, value in CREATE.items() if key != "oauth_refresh_token"}, None),
        ({**CREATE, "oauth_client_id": ""}, "oauth_client_id"),
        ({**CREATE, "oauth_email": "not-an-email"}, "oauth_email"),
        ({**CREATE, "oauth_client_secret": 42}, "oauth_client_secret"),
    ],
    ids=["bad-enum", "missing", "blank", "bad-email", "not-a-string"],
)
def test_invalid_calendar_bodies_get_the_error_envelope(recall_http, body, field):
    response = recall_http.post("/api/v2/calendars/", json=body)

    assert response.status_code == 400
    envelope = response.json()
    assert envelope["code"] == "invalid_request_data"
    assert envelope["message"]
    assert list(envelope["errors"]) == [field or "oauth_refresh_token"]


# ----- events: defaults, changes, listing --------------------------------------------------------
def test_add_event_defaults_are_realistic(recall_emulator, calendar):
    first = recall_emulator.add_event(calendar["id"], title="Design review")
    second = recall_emulator.add_event(calendar["id"])

    start, end = (datetime.fromisoformat(first[k]) for k in ("start_time", "end_time"))
    assert start > datetime.now(UTC) and end - start == timedelta(minutes=30)
    assert first["meeting_platform"] == "zoom" and "zoom.us/j/" in first["meeting_url"]
    assert first["platform"] == "google_calendar"
    assert first["ical_uid"].endswith("@google.com") and first["platform_id"]
    assert first["raw"]["summary"] == "Design review"
    assert first["raw"]["organizer"]["email"] == "owner@example.com"
    assert first["raw"]["attendees"][0]["self"] is True
    assert first["is_deleted"] is False and first["bots"] == []
    assert "." in first["updated_at"]  # microseconds
    assert second["updated_at"] > first["updated_at"]
    assert second["meeting_url"] != first["meeting_url"]


def test_outlook_events_carry_a_graph_payload(recall_emulator):
    calendar = recall_emulator.create_calendar("microsoft_outlook", oauth_email="al@corp.com")
    event = recall_emulator.add_event(
        calendar["id"],
        title="Board",
        meeting_url="https://teams.microsoft.com/l/meetup-join/abc",
        attendees=["al@corp.com", {"email": "x@other.com", "name": "X", "response": "accepted"}],
    )

    raw = event["raw"]
    assert event["meeting_platform"] == "microsoft_teams"
    assert raw["subject"] == "Board"
    assert raw["onlineMeeting"]["joinUrl"] == event["meeting_url"]
    assert raw["attendees"][1]["emailAddress"] == {"name": "X", "address": "x@other.com"}
    assert raw["attendees"][1]["status"]["response"] == "accepted"


def test_unknown_event_fields_are_a_programming_error(recall_emulator, calendar):
    with pytest.raises(TypeError, match="colour"):
        recall_emulator.add_event(calendar["id"], colour="red")
    with pytest.raises(LookupError):
        recall_emulator.add_event("8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00")


@pytest.mark.recall_emulator(unruly=False)
def test_update_event_moves_updated_at_and_notifies_with_it(recall_emulator, calendar):
    event = recall_emulator.add_event(calendar["id"])
    new_start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)

    updated = recall_emulator.update_event(event["id"], start_time=new_start, title="Moved")

    assert updated["start_time"] == iso(new_start)
    assert updated["raw"]["summary"] == "Moved"
    assert updated["updated_at"] > event["updated_at"]
    delivery = recall_emulator.deliveries[-1]
    assert delivery.event == "calendar.sync_events"
    stamp = datetime.fromisoformat(delivery.payload["data"]["last_updated_ts"])
    assert stamp == datetime.fromisoformat(updated["updated_at"])


def test_delete_event_flags_it_and_notifies(recall_emulator, recall_http, calendar):
    event = recall_emulator.add_event(calendar["id"])

    recall_emulator.delete_event(event["id"])

    body = recall_http.get(f"/api/v2/calendar-events/{event['id']}/").json()
    assert body["is_deleted"] is True
    assert body["raw"]["status"] == "cancelled"
    assert recall_emulator.deliveries[-1].event == "calendar.sync_events"


@pytest.mark.recall_emulator(unruly=False)
def test_add_events_sends_one_webhook_or_none(recall_emulator, calendar):
    sent = len(recall_emulator.deliveries)
    events = recall_emulator.add_events(calendar["id"], 5)
    recall_emulator.add_events(calendar["id"], 5, notify=False)

    new = recall_emulator.deliveries[sent:]
    assert len(new) == 1
    assert datetime.fromisoformat(new[0].payload["data"]["last_updated_ts"]) == (
        datetime.fromisoformat(events[0]["updated_at"])
    )
    starts = [e["start_time"] for e in events]
    assert len(set(starts)) == 5


def test_move_event_changes_its_calendar(recall_emulator, recall_http, calendar):
    other = recall_emulator.create_calendar()
    event = recall_emulator.add_event(calendar["id"])

    recall_emulator.move_event(event["id"], other["id"])

    def ids(calendar_id):
        rows, _ = all_pages(recall_http, "/api/v2/calendar-events/", calendar_id=calendar_id)
        return [row["id"] for row in rows]

    assert ids(calendar["id"]) == []
    assert ids(other["id"]) == [event["id"]]
    notified = {d.payload["data"]["calendar_id"] for d in recall_emulator.deliveries[-2:]}
    assert notified == {calendar["id"], other["id"]}


@pytest.mark.recall_emulator(unruly=False)
def test_thousand_events_page_lazily_with_absolute_next_urls(
    recall_emulator, recall_http, calendar
):
    recall_emulator.add_events(calendar["id"], 1000, notify=False)
    recall_emulator.add_events(recall_emulator.create_calendar()["id"], 10, notify=False)

    rows, pages = all_pages(recall_http, "/api/v2/calendar-events/", calendar_id=calendar["id"])

    assert len(rows) == 1000 and len({row["id"] for row in rows}) == 1000
    assert len(pages) == 10
    assert all(len(page["results"]) == 100 for page in pages)
    for page in pages[:-1]:
        assert page["next"].startswith(recall_emulator.base_url + "/api/v2/calendar-events/?")
        assert parse_qs(urlsplit(page["next"]).query)["calendar_id"] == [calendar["id"]]
    assert pages[-1]["next"] is None
    keys = [(row["updated_at"], row["id"]) for row in rows]
    assert keys == sorted(keys)


@pytest.mark.recall_emulator(unruly=False)
def test_paging_is_stable_while_events_change(recall_emulator, recall_http, calendar):
    originals = recall_emulator.add_events(calendar["id"], 250, notify=False)
    first = recall_http.get("/api/v2/calendar-events/").json()

    recall_emulator.add_events(calendar["id"], 30, notify=False)
    recall_emulator.update_event(originals[0]["id"], title="changed while paging")
    rest, _ = all_pages(recall_http, first["next"])

    seen = [row["id"] for row in first["results"] + rest]
    assert {e["id"] for e in originals} <= set(seen)
    assert len(seen) == 281  # 250 + 30 new + the changed one once more, at the end
    assert seen[-1] == originals[0]["id"]


@pytest.mark.recall_emulator(unruly=False)
def test_updated_at_filter_resumes_after_a_change(recall_emulator, recall_http, calendar):
    events = recall_emulator.add_events(calendar["id"], 20, notify=False)
    changed = recall_emulator.update_event(events[3]["id"], title="changed")
    deleted = recall_emulator.delete_event(events[7]["id"])

    rows, _ = all_pages(
        recall_http,
        "/api/v2/calendar-events/",
        calendar_id=calendar["id"],
        updated_at__gte=recall_emulator.deliveries[-2].payload["data"]["last_updated_ts"],
    )

    assert [row["id"] for row in rows] == [changed["id"], deleted["id"]]


def test_event_filters(recall_emulator, recall_http, calendar):
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    a = recall_emulator.add_event(calendar["id"], start_time=base, ical_uid="Abc-1")
    b = recall_emulator.add_event(calendar["id"], start_time=base + timedelta(hours=1))
    c = recall_emulator.add_event(
        calendar["id"], start_time=base + timedelta(hours=2), ical_uid="abc-2"
    )
    recall_emulator.delete_event(b["id"])

    def ids(**params):
        rows, _ = all_pages(recall_http, "/api/v2/calendar-events/", **params)
        return sorted(row["id"] for row in rows)

    assert ids(ical_uid="Abc") == [a["id"]]  # a case-sensitive prefix
    assert ids(ical_uid="abc-") == [c["id"]]
    assert ids(is_deleted="true") == [b["id"]]
    assert ids(is_deleted="false") == sorted([a["id"], c["id"]])
    assert ids(start_time=iso(base)) == [a["id"]]
    assert ids(start_time__gte=iso(base + timedelta(hours=1))) == sorted([b["id"], c["id"]])
    assert ids(start_time__lte=iso(base + timedelta(hours=1))) == sorted([a["id"], b["id"]])
    assert ids(calendar_id="8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"calendar_id": "nope"}, "calendar_id"),
        ({"is_deleted": "maybe"}, "is_deleted"),
        ({"start_time__gte": "yesterday"}, "start_time__gte"),
        ({"updated_at__gte": "2025-13-45"}, "updated_at__gte"),
    ],
)
def test_bad_event_filters_are_400(recall_http, params, field):
    response = recall_http.get("/api/v2/calendar-events/", params=params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_a_garbled_cursor_is_404(recall_http):
    response = recall_http.get("/api/v2/calendar-events/", params={"cursor": "%%%"})
    assert response.status_code == 404


# ----- managed scheduling -------------------------------------------------------------------------
def schedule(http, event_id, key="key-1", **config):
    return http.post(
        f"/api/v2/calendar-events/{event_id}/bot/",
        json={"deduplication_key": key, "bot_config": config},
    )


def test_one_bot_per_deduplication_key_across_calendars(recall_emulator, recall_http, calendar):
    other = recall_emulator.create_calendar("microsoft_outlook")
    url = "https://meet.google.com/abc-defg-hij"
    mine = recall_emulator.add_event(calendar["id"], meeting_url=url)
    theirs = recall_emulator.add_event(other["id"], meeting_url=url)

    first = schedule(recall_http, mine["id"], bot_name="Notes").json()
    second = schedule(recall_http, theirs["id"], bot_name="Notes").json()

    assert first["bots"][0]["bot_id"] == second["bots"][0]["bot_id"]
    assert first["bots"][0] == {
        "bot_id": first["bots"][0]["bot_id"],
        "start_time": mine["start_time"],
        "deduplication_key": "key-1",
        "meeting_url": url,
    }
    (bot,) = recall_emulator.bots.values()
    assert sorted(bot["event_ids"]) == sorted([mine["id"], theirs["id"]])
    assert bot["bot_name"] == "Notes" and bot["join_at"] == mine["start_time"]


def test_posting_again_replaces_config_and_key(recall_emulator, recall_http, calendar):
    event = recall_emulator.add_event(calendar["id"])
    bot_id = schedule(recall_http, event["id"], bot_name="First").json()["bots"][0]["bot_id"]

    schedule(recall_http, event["id"], bot_name="Second", metadata={"a": "1"})
    assert recall_emulator.bots[bot_id]["bot_config"] == {
        "bot_name": "Second",
        "metadata": {"a": "1"},
    }

    body = schedule(recall_http, event["id"], key="key-2", bot_name="Third").json()
    assert [entry["deduplication_key"] for entry in body["bots"]] == ["key-2"]
    assert list(recall_emulator.bots) == [body["bots"][0]["bot_id"]]  # the orphan went


def test_unschedule_is_idempotent_and_keeps_shared_bots(recall_emulator, recall_http, calendar):
    one, two = recall_emulator.add_events(calendar["id"], 2, notify=False)
    schedule(recall_http, one["id"])
    schedule(recall_http, two["id"])

    for _ in range(2):
        response = recall_http.delete(f"/api/v2/calendar-events/{one['id']}/bot/")
        assert response.status_code == 200 and response.json()["bots"] == []
    assert len(recall_emulator.bots) == 1

    recall_http.delete(f"/api/v2/calendar-events/{two['id']}/bot/")
    assert recall_emulator.bots == {}


def test_ended_and_deleted_events_cannot_get_a_bot(recall_emulator, recall_http, calendar):
    past = datetime.now(UTC) - timedelta(hours=2)
    ended = recall_emulator.add_event(calendar["id"], start_time=past)
    deleted = recall_emulator.delete_event(recall_emulator.add_event(calendar["id"])["id"])
    no_link = recall_emulator.add_event(calendar["id"], meeting_url=None)

    response = schedule(recall_http, ended["id"])
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_request_data",
        "message": "Cannot schedule bot as calendar event has ended.",
        "errors": {"non_field_errors": ["Cannot schedule bot as calendar event has ended."]},
    }
    assert schedule(recall_http, deleted["id"]).status_code == 400
    assert schedule(recall_http, no_link["id"]).status_code == 400
    overridden = schedule(recall_http, no_link["id"], meeting_url="https://zoom.us/j/123")
    assert overridden.status_code == 200
    assert schedule(recall_http, "8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00").status_code == 404


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["deduplication_key", "bot_config"]),
        ({"deduplication_key": "k"}, ["bot_config"]),
        ({"bot_config": {}}, ["deduplication_key"]),
        ({"deduplication_key": "k", "bot_config": "x"}, ["bot_config"]),
        ({"deduplication_key": "", "bot_config": {}}, ["deduplication_key"]),
    ],
)
def test_schedule_needs_a_key_and_a_config(recall_emulator, recall_http, calendar, body, fields):
    event = recall_emulator.add_event(calendar["id"])

    response = recall_http.post(f"/api/v2/calendar-events/{event['id']}/bot/", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request_data"
    assert list(response.json()["errors"]) == fields


def test_a_moved_event_keeps_its_old_bot_until_scheduled_again(
    recall_emulator, recall_http, calendar
):
    event = recall_emulator.add_event(calendar["id"])
    old = schedule(recall_http, event["id"], key="old").json()["bots"][0]

    moved = recall_emulator.update_event(
        event["id"], start_time=datetime.now(UTC) + timedelta(days=5)
    )
    assert moved["bots"] == [old]

    fresh = schedule(recall_http, event["id"], key="new").json()["bots"][0]
    assert fresh["start_time"] == moved["start_time"] != old["start_time"]
    assert list(recall_emulator.bots) == [fresh["bot_id"]]


def test_deleting_an_event_removes_its_bot_unless_shared(recall_emulator, recall_http, calendar):
    shared_a, shared_b, alone = recall_emulator.add_events(calendar["id"], 3, notify=False)
    schedule(recall_http, shared_a["id"], key="shared")
    schedule(recall_http, shared_b["id"], key="shared")
    schedule(recall_http, alone["id"], key="alone")

    recall_emulator.delete_event(shared_a["id"])
    recall_emulator.delete_event(alone["id"])

    (bot,) = recall_emulator.bots.values()
    assert bot["deduplication_key"] == "shared" and bot["event_ids"] == [shared_b["id"]]


def test_a_disconnected_calendar_loses_its_bots(recall_emulator, recall_http, calendar):
    event = recall_emulator.add_event(calendar["id"])
    schedule(recall_http, event["id"])

    recall_emulator.disconnect_calendar(calendar["id"])

    assert recall_emulator.bots == {}
    assert recall_http.get(f"/api/v2/calendar-events/{event['id']}/").json()["bots"] == []


# ----- bots (v1) ----------------------------------------------------------------------------------
def test_bot_api_create_list_update_delete(recall_emulator, recall_http):
    soon = datetime.now(UTC) + timedelta(hours=1)
    later = soon + timedelta(days=1)
    created = recall_http.post(
        "/api/v1/bot/",
        json={
            "meeting_url": "https://zoom.us/j/123456789?pwd=x",
            "join_at": iso(soon),
            "bot_name": "Recorder",
            "metadata": {"event": "e1"},
        },
    )
    assert created.status_code == 201
    bot = created.json()
    assert bot["meeting_url"] == {
        "meeting_id": "123456789",
        "meeting_password": "x",
        "platform": "zoom",
    }
    recall_http.post(
        "/api/v1/bot/",
        json={"meeting_url": "https://meet.google.com/aaa-bbbb-ccc", "join_at": iso(later)},
    )

    def ids(**params):
        rows, _ = all_pages(recall_http, "/api/v1/bot/", **params)
        return [row["id"] for row in rows]

    assert len(ids()) == 2
    assert ids(metadata__event="e1") == [bot["id"]]
    assert ids(join_at_before=iso(soon + timedelta(minutes=1))) == [bot["id"]]
    assert len(ids(join_at_after=iso(soon + timedelta(minutes=1)))) == 1
    assert ids(meeting_url="https://zoom.us/j/123456789?pwd=x") == [bot["id"]]
    assert ids(platform="zoom") == [bot["id"]]
    assert len(ids(status="ready")) == 2

    patched = recall_http.patch(f"/api/v1/bot/{bot['id']}/", json={"bot_name": "Renamed"})
    assert patched.json()["bot_name"] == "Renamed"
    assert patched.json()["join_at"] == iso(soon)
    assert recall_http.delete(f"/api/v1/bot/{bot['id']}/").status_code == 204
    assert recall_http.get(f"/api/v1/bot/{bot['id']}/").status_code == 404


@pytest.mark.parametrize("join_at", [None, "past"], ids=["ad-hoc", "past-join"])
def test_a_dispatched_bot_cannot_be_deleted_or_changed(recall_http, join_at):
    body = {"meeting_url": "https://zoom.us/j/1"}
    if join_at:
        body["join_at"] = iso(datetime.now(UTC) - timedelta(minutes=1))
    bot_id = recall_http.post("/api/v1/bot/", json=body).json()["id"]

    assert recall_http.delete(f"/api/v1/bot/{bot_id}/").status_code == 405
    patched = recall_http.patch(f"/api/v1/bot/{bot_id}/", json={"bot_name": "x"})
    assert patched.status_code == 400 and patched.json()["code"] == "update_bot_failed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "meeting_url"),
        ({"meeting_url": "https://example.com/room"}, "meeting_url"),
        ({"meeting_url": "https://zoom.us/j/1", "join_at": "soon"}, "join_at"),
        ({"meeting_url": "https://zoom.us/j/1", "bot_name": "x" * 101}, "bot_name"),
        ({"meeting_url": "https://zoom.us/j/1", "metadata": {"a": 1}}, "metadata"),
    ],
)
@pytest.mark.sends_invalid_bot_config
def test_invalid_bot_bodies(recall_http, body, field):
    response = recall_http.post("/api/v1/bot/", json=body)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_deleting_a_managed_bot_through_the_bot_api_clears_the_event(
    recall_emulator, recall_http, calendar
):
    event = recall_emulator.add_event(calendar["id"])
    bot_id = schedule(recall_http, event["id"]).json()["bots"][0]["bot_id"]

    assert recall_http.delete(f"/api/v1/bot/{bot_id}/").status_code == 204

    assert recall_http.get(f"/api/v2/calendar-events/{event['id']}/").json()["bots"] == []


# ----- auth and HTTP errors -----------------------------------------------------------------------
def test_authentication(recall_emulator, recall_http):
    url = recall_emulator.base_url + "/api/v2/calendars/"
    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Token nope"}, timeout=5)
    bare = requests.get(url, headers={"Authorization": recall_emulator.api_key}, timeout=5)

    assert missing.status_code == 401 and "detail" in missing.json()
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid token."}
    assert bare.status_code == 200


def test_not_found_and_method_not_allowed(recall_http):
    assert recall_http.get("/api/v2/nothing/").json() == {"detail": "Not found."}
    assert recall_http.get("/api/v2/calendars/not-a-uuid/").status_code == 404
    missing = recall_http.get("/api/v2/calendar-events/8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00/")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}

    wrong = recall_http.put("/api/v2/calendars/", json={})
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["Allow"]
    assert recall_http.delete("/api/v2/calendar-events/").status_code == 405


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"], ids=["malformed", "not-an-object"])
def test_bad_json_bodies(recall_http, body):
    response = recall_http.post(
        "/api/v2/calendars/", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request_data"
    assert "non_field_errors" in response.json()["errors"]


def test_request_log(recall_emulator, recall_http, calendar):
    event = recall_emulator.add_event(calendar["id"])
    schedule(recall_http, event["id"], bot_name="Logged")
    recall_http.get("/api/v2/calendar-events/", params={"calendar_id": calendar["id"]})

    (posted,) = recall_emulator.requests_for("POST", "/bot/")
    assert posted.json["bot_config"] == {"bot_name": "Logged"}
    assert posted.status == 200
    (listed,) = recall_emulator.requests_for("get", "/calendar-events/")
    assert listed.query == {"calendar_id": calendar["id"]}


def test_concurrent_requests_are_safe(recall_emulator, recall_http):
    def create():
        for _ in range(10):
            assert recall_http.post("/api/v2/calendars/", json=CREATE).status_code == 201

    threads = [threading.Thread(target=create) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows, _ = all_pages(recall_http, "/api/v2/calendars/")
    assert len({row["id"] for row in rows}) == 50


# ----- fixture, lifecycle and demo --------------------------------------------------------------
def test_fixture_points_settings_at_the_emulator(recall_emulator, settings):
    config = settings.RECALL_CALENDAR
    assert config["BASE_URL"] == recall_emulator.base_url
    assert config["API_KEY"] == recall_emulator.api_key
    assert config["WEBHOOK_SECRET"] == recall_emulator.webhook_secret
    assert config["TIMEOUT"] == 2.0  # the rest of the test settings is kept


def test_without_database_access_deliveries_are_only_recorded(recall_emulator, calendar):
    assert recall_emulator.webhook_url is None
    assert recall_emulator.deliveries[-1].status is None
    assert recall_emulator.deliveries[-1].error is None


def test_emulator_outside_pytest_needs_start():
    emulator = RecallEmulator()
    with pytest.raises(RuntimeError):
        _ = emulator.base_url
    with emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
    emulator.stop()  # stopping twice is harmless


@pytest.mark.parametrize("day", [3, 7, 9])  # a Monday, a Friday, a Sunday
def test_demo_week_is_realistic(day):
    events = working_week("me@acme.test", today=datetime(2025, 3, day, tzinfo=UTC))

    assert {e["start_time"].weekday() for e in events} == {0, 1, 2, 3, 4}
    standups = [e for e in events if e["title"] == "Daily stand-up"]
    assert len(standups) == 5 and len({e["series_id"] for e in standups}) == 1
    assert any(e["meeting_url"] is None for e in events)
    hosts = {urlsplit(e["meeting_url"]).hostname for e in events if e["meeting_url"]}
    assert hosts == {"zoom.us", "meet.google.com", "teams.microsoft.com"}
    attendees = {a for e in events for a in e["attendees"]}
    assert any(not a.endswith("@acme.test") for a in attendees)


def test_auto_connect_seeds_a_week_and_notifies():
    received = []
    done = threading.Event()

    def target(body, headers):
        received.append(body)
        if b"sync_events" in body:
            done.set()
        return 200

    with RecallEmulator(
        webhook_url=target,
        auto_connect=True,
        auto_connect_delay=0.01,
        seed_events=True,
        unruly=False,  # a callable target and a timer thread: kind delivery sends at once
    ) as emulator:
        response = requests.post(
            emulator.base_url + "/api/v2/calendars/",
            json=CREATE,
            headers={"Authorization": f"Token {emulator.api_key}"},
            timeout=5,
        )
        calendar_id = response.json()["id"]
        assert done.wait(5)
        calendar = emulator.calendars[calendar_id]
        assert calendar["status"] == "connected"
        assert len([e for e in emulator.events.values() if e["calendar_id"] == calendar_id]) >= 15
        # Connected, then the week announced; yesterday's meetings and their bots' webhooks may
        # still be on their way (the demo seeds them after the week).
        events = [d.event for d in emulator.deliveries]
        assert events[:2] == ["calendar.update", "calendar.sync_events"]
