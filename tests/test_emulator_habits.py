"""The emulator behaves as Recall does, not kinder: idempotency keys, 507 and rate limits with
Retry-After, bots that start and end (with their webhooks), deduplication only onto bots not yet
started, bot_config validation, and unruly webhook delivery. Each habit has a switch; these tests
show the habit and that the switch turns it off."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import jsonschema
import pytest

from django_recall_calendar.testing import RecallEmulator
from django_recall_calendar.testing.clock import parse_ts
from django_recall_calendar.testing.delivery import UnrulyOptions
from django_recall_calendar.testing.validation import BOT_NAME_MAX_LENGTH, BOT_WRITABLE_FIELDS
from tests.conftest import RecallHttp

from .test_emulator_conformance import SHARED, SPEC_FILE, spec

CREATE = {
    "platform": "google_calendar",
    "oauth_client_id": "client-id",
    "oauth_client_secret": "client-secret",
    "oauth_refresh_token": "refresh-token",
}
needs_spec = pytest.mark.skipif(
    not SPEC_FILE.exists(), reason=f"Recall's documents are not at {SHARED}"
)


def _http(emulator: RecallEmulator) -> RecallHttp:
    return RecallHttp(emulator.base_url, emulator.api_key)


# ----- Idempotency-Key ---------------------------------------------------------------------------
def test_a_repeated_create_with_one_key_makes_one_calendar(recall_emulator, recall_http):
    headers = {"Idempotency-Key": "connect-1"}
    first = recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers)
    again = recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers)
    other = recall_http.post("/api/v2/calendars/", json=CREATE, headers={"Idempotency-Key": "2"})

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["id"] != first.json()["id"]
    assert len(recall_emulator.calendars) == 2


def test_without_a_key_every_create_acts(recall_emulator, recall_http):
    recall_http.post("/api/v2/calendars/", json=CREATE)
    recall_http.post("/api/v2/calendars/", json=CREATE)

    assert len(recall_emulator.calendars) == 2


def test_a_repeat_while_the_first_is_in_flight_gets_409(recall_emulator, recall_http):
    recall_emulator.inject_fault("slow", path="/api/v2/calendars/", seconds=1.0)
    headers = {"Idempotency-Key": "k"}
    answers = []
    first = threading.Thread(
        target=lambda: answers.append(
            _http(recall_emulator).post("/api/v2/calendars/", json=CREATE, headers=headers)
        )
    )
    first.start()
    while not recall_emulator.requests_for("POST", "/api/v2/calendars/"):
        time.sleep(0.01)
    during = recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers)
    first.join()
    after = recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers)

    assert during.status_code == 409
    assert answers[0].status_code == 201
    assert after.json()["id"] == answers[0].json()["id"]
    assert len(recall_emulator.calendars) == 1


def test_a_refused_request_is_not_remembered_under_its_key(recall_emulator, recall_http):
    recall_emulator.inject_fault("503", path="/api/v2/calendars/")
    headers = {"Idempotency-Key": "k"}

    assert recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers).status_code == 503
    assert recall_http.post("/api/v2/calendars/", json=CREATE, headers=headers).status_code == 201
    assert len(recall_emulator.calendars) == 1


def test_a_key_is_replayed_for_an_hour_only():
    with RecallEmulator(time_scale=36_000, unruly=False) as emulator, _http(emulator) as http:
        headers = {"Idempotency-Key": "k"}
        first = http.post("/api/v2/calendars/", json=CREATE, headers=headers).json()
        time.sleep(0.11)  # an emulated hour
        later = http.post("/api/v2/calendars/", json=CREATE, headers=headers).json()

    assert later["id"] != first["id"]


# ----- 507 and rate limits -----------------------------------------------------------------------
def test_507_says_when_to_retry(recall_emulator, recall_http):
    recall_emulator.inject_fault("507", retry_after=30)

    answer = recall_http.get("/api/v2/calendars/")

    assert answer.status_code == 507 and answer.headers["Retry-After"] == "30"


@pytest.mark.parametrize("kind", ["507", "429"])
def test_a_refusal_can_come_without_retry_after(recall_emulator, recall_http, kind):
    recall_emulator.inject_fault(kind, retry_after=None)

    answer = recall_http.get("/api/v2/calendars/")

    assert answer.status_code == int(kind) and "Retry-After" not in answer.headers


def test_event_listings_are_limited_to_60_a_minute_per_workspace():
    with RecallEmulator(time_scale=60, unruly=False) as emulator, _http(emulator) as http:
        answers = [http.get("/api/v2/calendar-events/") for _ in range(61)]
        other_endpoint = http.get("/api/v2/calendars/")
        wait = float(answers[-1].headers["Retry-After"])
        time.sleep(wait)
        after_the_wait = http.get("/api/v2/calendar-events/")

    assert [a.status_code for a in answers[:60]] == [200] * 60
    assert answers[-1].status_code == 429
    assert 0 < wait <= 1  # a minute at 60x is a second
    assert other_endpoint.status_code == 200
    assert after_the_wait.status_code == 200


def test_rate_limits_can_be_switched_off():
    with RecallEmulator(rate_limits=False, unruly=False) as emulator, _http(emulator) as http:
        statuses = {http.get("/api/v2/calendar-events/").status_code for _ in range(70)}

    assert statuses == {200}


@needs_spec
def test_the_limits_are_the_specs_x_throttles():
    from django_recall_calendar.testing.throttles import LIMITS

    published = {
        (method.upper(), path): operation["x-throttles"][0]["limit"]
        for path, operations in spec()["paths"].items()
        if path.startswith(("/api/v2/calendar", "/api/v1/bot/"))
        for method, operation in operations.items()
        if isinstance(operation, dict) and "x-throttles" in operation
    }
    published = {key: limit for key, limit in published.items() if not key[1].endswith("_media/")}
    published = {key: limit for key, limit in published.items() if "leave_call" not in key[1]}

    assert published == LIMITS


# ----- bots: lifecycle, webhooks, deduplication --------------------------------------------------
@pytest.fixture
def meeting(recall_emulator, recall_http):
    """A future meeting of a connected calendar, with a managed bot scheduled for it."""
    calendar = recall_emulator.create_calendar()
    recall_emulator.connect_calendar(calendar["id"])
    start = (parse_ts(recall_emulator.workspace.clock.now()) + timedelta(hours=2)).isoformat()
    event = recall_emulator.add_event(calendar["id"], start_time=start)
    body = {"deduplication_key": "meeting-1", "bot_config": {"metadata": {"event": "e1"}}}
    answer = recall_http.post(f"/api/v2/calendar-events/{event['id']}/bot/", json=body)
    return {
        "calendar": calendar,
        "event": answer.json(),
        "bot_id": answer.json()["bots"][0]["bot_id"],
    }


def test_a_bot_moves_through_the_meeting_sending_its_webhooks_in_order(recall_emulator, meeting):
    recall_emulator.move_bot(meeting["bot_id"], "done", waiting_room=True)

    sent = [d.payload for d in recall_emulator.deliveries if d.event.startswith("bot.")]
    assert [p["event"] for p in sent] == [
        "bot.joining_call",
        "bot.in_waiting_room",
        "bot.in_call_not_recording",
        "bot.recording_permission_allowed",
        "bot.in_call_recording",
        "bot.call_ended",
        "bot.done",
    ]
    assert {p["data"]["bot"]["id"] for p in sent} == {meeting["bot_id"]}
    assert sent[0]["data"]["bot"]["metadata"] == {"event": "e1"}
    assert sent[5]["data"]["data"]["sub_code"] == "meeting_ended_by_host"
    assert sent[0]["data"]["data"]["sub_code"] is None
    times = [parse_ts(p["data"]["data"]["updated_at"]) for p in sent]
    assert times == sorted(times)


def test_a_fatal_ending_carries_its_sub_code(recall_emulator, recall_http, meeting):
    recall_emulator.move_bot(meeting["bot_id"], "joining_call")
    recall_emulator.move_bot(meeting["bot_id"], "fatal", sub_code="meeting_not_found")

    (last,) = [d.payload for d in recall_emulator.deliveries if d.event == "bot.fatal"]
    assert last["data"]["data"] == {
        "code": "fatal",
        "sub_code": "meeting_not_found",
        "updated_at": last["data"]["data"]["updated_at"],
    }
    bot = recall_http.get(f"/api/v1/bot/{meeting['bot_id']}/").json()
    assert bot["status_changes"][-1]["code"] == "fatal"
    with pytest.raises(ValueError, match="has ended"):
        recall_emulator.move_bot(meeting["bot_id"], "in_call_recording")


def test_a_bot_never_goes_back(recall_emulator, meeting):
    recall_emulator.move_bot(meeting["bot_id"], "in_call_recording")

    with pytest.raises(ValueError, match="cannot go back"):
        recall_emulator.move_bot(meeting["bot_id"], "joining_call")


@needs_spec
def test_bot_webhooks_match_the_svix_catalog(recall_emulator, meeting):
    recall_emulator.move_bot(meeting["bot_id"], "recording_permission_denied")
    recall_emulator.move_bot(meeting["bot_id"], "done")
    catalog = {e["name"]: e for e in json.loads((SHARED / "webhooks.json").read_text())["data"]}

    sent = [d.payload for d in recall_emulator.deliveries if d.event.startswith("bot.")]
    assert [p["event"] for p in sent][-3:] == [
        "bot.recording_permission_denied",
        "bot.call_ended",
        "bot.done",
    ]
    for payload in sent:
        schema = dict(catalog[payload["event"]]["schemas"]["1"])
        schema.pop("$id"), schema.pop("$schema")
        # The catalog types sub_code as a string on failures and string-or-null otherwise.
        jsonschema.Draft7Validator(schema).validate(payload)


def test_scheduling_onto_a_started_bot_gives_a_new_bot(recall_emulator, recall_http, meeting):
    calendar_id = meeting["calendar"]["id"]
    other = recall_emulator.add_event(calendar_id, start_time=meeting["event"]["start_time"])
    body = {"deduplication_key": "meeting-1", "bot_config": {}}
    shared = recall_http.post(f"/api/v2/calendar-events/{other['id']}/bot/", json=body).json()
    recall_emulator.move_bot(meeting["bot_id"], "call_ended", sub_code="bot_kicked_from_call")

    again = recall_http.post(f"/api/v2/calendar-events/{meeting['event']['id']}/bot/", json=body)

    assert shared["bots"][0]["bot_id"] == meeting["bot_id"]  # not started: deduplicated
    bots = again.json()["bots"]
    assert bots[0]["bot_id"] == meeting["bot_id"]  # the kicked bot stays on record
    assert bots[-1]["bot_id"] != meeting["bot_id"]
    assert len(recall_emulator.bots) == 2


# ----- bot_config validation ---------------------------------------------------------------------
@pytest.mark.sends_invalid_bot_config
def test_a_bot_name_over_100_characters_is_refused(recall_emulator, recall_http, meeting):
    body = {"deduplication_key": "k", "bot_config": {"bot_name": "x" * 101}}

    answer = recall_http.post(f"/api/v2/calendar-events/{meeting['event']['id']}/bot/", json=body)

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_request_data"
    assert answer.json()["errors"]["bot_config"]["bot_name"]
    assert answer.json()["message"].startswith("bot_config: bot_name:")


@pytest.mark.sends_invalid_bot_config
def test_wrong_types_in_bot_config_are_refused(recall_emulator, recall_http, meeting):
    config = {"recording_config": "on", "metadata": {"n": 1}, "join_at": "tomorrow"}
    body = {"deduplication_key": "k", "bot_config": config}

    answer = recall_http.post(f"/api/v2/calendar-events/{meeting['event']['id']}/bot/", json=body)

    assert set(answer.json()["errors"]["bot_config"]) == {"recording_config", "metadata", "join_at"}


@pytest.mark.recall_emulator(strict=True)
@pytest.mark.sends_invalid_bot_config
def test_strict_validation_refuses_keys_the_schema_does_not_know(recall_emulator, recall_http):
    answer = recall_http.post(
        "/api/v1/bot/", json={"meeting_url": "https://zoom.us/j/1", "botname": "x"}
    )
    lenient = RecallEmulator(unruly=False)
    with lenient, _http(lenient) as http:
        accepted = http.post(
            "/api/v1/bot/", json={"meeting_url": "https://zoom.us/j/1", "botname": "x"}
        )

    assert answer.status_code == 400 and answer.json()["errors"] == {"botname": ["Unknown field."]}
    assert accepted.status_code == 201


@needs_spec
def test_the_known_bot_fields_are_the_specs_writable_create_bot_fields():
    properties = spec()["components"]["schemas"]["Bot"]["properties"]
    writable = {name for name, schema in properties.items() if not schema.get("readOnly")}

    assert writable == BOT_WRITABLE_FIELDS
    assert properties["bot_name"]["maxLength"] == BOT_NAME_MAX_LENGTH


# ----- unruly delivery ---------------------------------------------------------------------------
class Inbox:
    """A receiver that refuses the first ``refuse`` attempts of every message."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.seen: list[tuple[str, dict]] = []
        self.tries: dict[str, int] = {}

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        message_id = headers["webhook-id"]
        self.tries[message_id] = self.tries.get(message_id, 0) + 1
        if self.tries[message_id] <= self.refuse:
            return 503
        self.seen.append((message_id, json.loads(body)))
        return 204


def test_unruly_delivery_holds_duplicates_and_reorders():
    inbox = Inbox()
    options = UnrulyOptions(duplicate_rate=0.5, seed=7)
    with RecallEmulator(webhook_url=inbox, unruly=options, time_scale=100) as emulator:
        calendar = emulator.create_calendar()
        made = [emulator.add_event(calendar["id"]) for _ in range(20)]
        held = len(inbox.seen)
        emulator.settle(timeout=10)

    ids = [message_id for message_id, _ in inbox.seen]
    stamps = [payload["data"]["last_updated_ts"] for _, payload in inbox.seen]
    assert held == 0  # nothing arrived at once
    assert len(set(ids)) == 20 and len(ids) > 20  # every message, some twice
    assert stamps != sorted(stamps)  # not in the order they were sent
    # last_updated_ts is a valid lower bound, not the changed event's updated_at.
    announced = {p["data"]["last_updated_ts"] for _, p in inbox.seen}
    assert not announced & {parse_ts(e["updated_at"]).isoformat() for e in made}
    assert min(parse_ts(t) for t in announced) <= min(parse_ts(e["updated_at"]) for e in made)


def test_refused_deliveries_are_retried_on_svixs_schedule_and_logged(caplog):
    inbox = Inbox(refuse=2)  # the first try and the retry after 5 s fail, the one after 5 min works
    options = UnrulyOptions(duplicate_rate=0, max_delay=0)
    with RecallEmulator(webhook_url=inbox, unruly=options, time_scale=3000) as emulator:
        calendar = emulator.create_calendar()
        caplog.set_level(logging.WARNING, "django_recall_calendar.testing")
        emulator.connect_calendar(calendar["id"])
        started = time.monotonic()
        emulator.settle(timeout=10)
        took = time.monotonic() - started

    assert [payload["event"] for _, payload in inbox.seen] == ["calendar.update"]
    assert [d.status for d in emulator.failed_deliveries] == [503, 503]
    assert "retry in 5 s" in caplog.text and "retry in 300 s" in caplog.text
    assert took >= 305 / 3000  # the schedule was waited for, scaled


def test_a_kind_emulator_delivers_at_once_once_in_order():
    inbox = Inbox()
    with RecallEmulator(webhook_url=inbox, unruly=False) as emulator:
        calendar = emulator.create_calendar()
        events = [emulator.add_event(calendar["id"]) for _ in range(5)]

    stamps = [payload["data"]["last_updated_ts"] for _, payload in inbox.seen]
    assert stamps == [parse_ts(e["updated_at"]).isoformat() for e in events]


def test_listings_come_in_no_particular_order(recall_emulator, recall_http):
    calendar = recall_emulator.create_calendar()
    recall_emulator.add_events(calendar["id"], 50, notify=False)

    rows = recall_http.get("/api/v2/calendar-events/").json()["results"]

    assert len(rows) == 50
    assert [r["updated_at"] for r in rows] != sorted(r["updated_at"] for r in rows)


@pytest.mark.recall_emulator(page_size=10)
def test_pages_come_in_no_particular_order_either(recall_emulator, recall_http):
    calendar = recall_emulator.create_calendar()
    made = recall_emulator.add_events(calendar["id"], 50, notify=False)
    pages, url = [], "/api/v2/calendar-events/"
    while url:
        page = recall_http.get(url).json()
        pages.append({row["id"] for row in page["results"]})
        url = page["next"]

    assert len(pages) == 5 and set().union(*pages) == {e["id"] for e in made}
    oldest_first = [{e["id"] for e in made[i : i + 10]} for i in range(0, 50, 10)]
    assert pages != oldest_first


@pytest.mark.recall_emulator(unruly=False, rate_limits=False)
def test_the_fixture_takes_its_options_from_the_mark(recall_emulator):
    assert recall_emulator.unruly is None and recall_emulator.throttle is None


def test_every_refusal_is_logged_also_when_kind():
    with RecallEmulator(webhook_url=Inbox(refuse=1), unruly=False) as emulator:
        calendar = emulator.create_calendar()
        emulator.connect_calendar(calendar["id"])

    assert [d.status for d in emulator.failed_deliveries] == [503]
