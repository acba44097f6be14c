"""RecallClient against the Recall emulator over real HTTP: every operation, pagination, faults."""

import logging
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest

from django_recall_calendar.client import RecallClient
from django_recall_calendar.exceptions import (
    RecallAuthenticationError,
    RecallConnectionError,
    RecallInvalidRequestError,
    RecallNotFoundError,
    RecallRateLimitError,
    RecallServerError,
)

CLIENT_SECRET = "GOCSPX-a-client-secret"
REFRESH_TOKEN = "1//0g-a-refresh-token"


@pytest.fixture
def client(recall_emulator):
    """A client built from the settings the fixture pointed at the emulator."""
    with RecallClient.from_settings() as client:
        yield client


def fast_client(emulator, **options) -> RecallClient:
    """A client with a short timeout and near-zero backoff, for fault tests."""
    options = {
        "timeout": 0.3,
        "max_retries": 2,
        "backoff_base": 0.001,
        "backoff_cap": 0.002,
        "retry_after_cap": 0.05,
        **options,
    }
    return RecallClient(emulator.api_key, emulator.base_url, **options)


def create_calendar(client, **overrides):
    fields = {
        "platform": "google_calendar",
        "oauth_client_id": "client-id.apps.example.com",
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_refresh_token": REFRESH_TOKEN,
        **overrides,
    }
    return client.create_calendar(**fields)


def requests_to(emulator, method, path_prefix):
    return [r for r in emulator.requests if r.method == method and r.path.startswith(path_prefix)]


def future(minutes=60):
    return datetime.now(UTC) + timedelta(minutes=minutes)


# Calendars -------------------------------------------------------------------------------------


def test_calendar_lifecycle(client, recall_emulator):
    created = create_calendar(client, oauth_email="ada@example.com")
    assert created["status"] == "connecting"
    assert created["platform_email"] is None
    assert created["oauth_email"] == "ada@example.com"

    recall_emulator.connect_calendar(created["id"], email="ada@example.com")
    retrieved = client.retrieve_calendar(created["id"])
    assert retrieved["status"] == "connected"
    assert retrieved["platform_email"] == "ada@example.com"

    updated = client.update_calendar(created["id"], oauth_refresh_token="1//new-token")
    assert updated["oauth_refresh_token"] == "1//new-token"

    token = client.create_access_token(created["id"])
    assert set(token) >= {"token", "expires_at"}

    assert client.delete_calendar(created["id"]) is None
    assert {r.headers.get("authorization") for r in recall_emulator.requests} == {
        f"Token {recall_emulator.api_key}"
    }
    with pytest.raises(RecallNotFoundError) as excinfo:
        client.retrieve_calendar(created["id"])
    assert excinfo.value.status_code == 404


def test_list_calendars_with_filters(client, recall_emulator):
    google = create_calendar(client)
    outlook = create_calendar(client, platform="microsoft_outlook")
    recall_emulator.connect_calendar(outlook["id"], email="bob@example.com")

    def ids(**filters):
        return {calendar["id"] for calendar in client.list_calendars(**filters)}

    assert ids() == {google["id"], outlook["id"]}
    assert ids(platform="microsoft_outlook") == {outlook["id"]}
    assert ids(status="connecting") == {google["id"]}
    assert ids(email="bob@example.com") == {outlook["id"]}
    assert ids(created_at__gte=datetime.now(UTC) + timedelta(hours=1)) == set()
    assert ids(created_at__gte=datetime.now(UTC) - timedelta(hours=1), platform=None) == {
        google["id"],
        outlook["id"],
    }


def test_invalid_calendar_body_is_an_invalid_request_with_field_errors(client):
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        create_calendar(client, platform="yahoo_calendar")
    error = excinfo.value
    assert error.status_code == 400
    assert error.code == "invalid_request_data"
    assert "platform" in error.errors


def test_wrong_api_key_is_an_authentication_error(recall_emulator):
    client = RecallClient("not-the-key", recall_emulator.base_url)
    with pytest.raises(RecallAuthenticationError) as excinfo:
        list(client.list_calendars())
    assert excinfo.value.status_code == 401
    assert excinfo.value.message


def test_an_id_cannot_change_the_path(client, recall_emulator):
    calendar = create_calendar(client)
    with pytest.raises(RecallNotFoundError):
        client.retrieve_calendar(f"{calendar['id']}/access-token")
    with pytest.raises(ValueError, match="id is required"):
        client.retrieve_calendar("")


# Calendar events -------------------------------------------------------------------------------


@pytest.fixture
def calendar(client, recall_emulator):
    created = create_calendar(client)
    recall_emulator.connect_calendar(created["id"], email="ada@example.com")
    return created


def test_list_and_retrieve_events_with_filters(client, recall_emulator, calendar):
    soon = recall_emulator.add_event(calendar["id"], start_time=future(60), ical_uid="abc-1")
    later = recall_emulator.add_event(calendar["id"], start_time=future(600), ical_uid="xyz-1")
    gone = recall_emulator.add_event(calendar["id"], start_time=future(120))
    recall_emulator.delete_event(gone["id"])

    def ids(**filters):
        return [event["id"] for event in client.list_calendar_events(**filters)]

    assert set(ids(calendar_id=calendar["id"])) == {soon["id"], later["id"], gone["id"]}
    assert set(ids(calendar_id=calendar["id"], is_deleted=False)) == {soon["id"], later["id"]}
    assert ids(calendar_id=calendar["id"], is_deleted=True) == [gone["id"]]
    assert ids(start_time__gte=future(300)) == [later["id"]]
    assert set(ids(start_time__lte=future(300), is_deleted=False)) == {soon["id"]}
    assert ids(ical_uid="abc") == [soon["id"]]

    retrieved = client.retrieve_calendar_event(soon["id"])
    assert retrieved["id"] == soon["id"]
    assert retrieved["calendar_id"] == calendar["id"]


def test_updated_at_filter_accepts_datetimes_and_strings(client, recall_emulator, calendar):
    first = recall_emulator.add_event(calendar["id"])
    second = recall_emulator.add_event(calendar["id"])
    since = second["updated_at"]
    assert [e["id"] for e in client.list_calendar_events(updated_at__gte=since)] == [second["id"]]
    as_datetime = datetime.fromisoformat(since.replace("Z", "+00:00"))
    assert [e["id"] for e in client.list_calendar_events(updated_at__gte=as_datetime)] == [
        second["id"]
    ]
    assert first["id"] in {e["id"] for e in client.list_calendar_events()}


def test_naive_datetime_filter_is_refused_before_any_request(client, recall_emulator):
    before = len(recall_emulator.requests)
    with pytest.raises(ValueError, match="aware datetime"):
        client.list_calendar_events(updated_at__gte=datetime(2025, 1, 1))
    assert len(recall_emulator.requests) == before


def test_pagination_across_1000_events_is_lazy(client, recall_emulator, calendar):
    recall_emulator.add_events(calendar["id"], 1000, notify=False)
    before = len(recall_emulator.requests)

    events = client.list_calendar_events(calendar_id=calendar["id"])
    assert len(recall_emulator.requests) == before, "no request until iteration starts"
    first = next(events)
    assert len(recall_emulator.requests) == before + 1, "the first item costs one page"

    rest = list(events)
    ids = [first["id"]] + [event["id"] for event in rest]
    assert len(ids) == len(set(ids)) == 1000
    pages = len(recall_emulator.requests) - before
    assert pages == 10
    assert all(r.method == "GET" for r in recall_emulator.requests[before:])


def test_event_pages_follow_next_with_the_filters(client, recall_emulator, calendar):
    recall_emulator.add_events(calendar["id"], 250, notify=False)
    other = create_calendar(client)
    recall_emulator.connect_calendar(other["id"], email="bob@example.com")
    recall_emulator.add_events(other["id"], 30, notify=False)

    pages = list(client.iter_calendar_event_pages(calendar_id=calendar["id"]))
    assert [len(page) for page in pages] == [100, 100, 50]
    assert {event["calendar_id"] for page in pages for event in page} == {calendar["id"]}


def test_schedule_and_unschedule_a_managed_bot(client, recall_emulator, calendar):
    event = recall_emulator.add_event(calendar["id"], start_time=future(120))
    scheduled = client.schedule_bot(
        event["id"], deduplication_key="key-1", bot_config={"bot_name": "Notetaker"}
    )
    assert scheduled["id"] == event["id"]
    assert [bot["deduplication_key"] for bot in scheduled["bots"]] == ["key-1"]

    replaced = client.schedule_bot(
        event["id"], deduplication_key="key-1", bot_config={"bot_name": "Renamed"}
    )
    assert len(replaced["bots"]) == 1

    unscheduled = client.unschedule_bot(event["id"])
    assert unscheduled["bots"] == []
    assert client.unschedule_bot(event["id"])["bots"] == [], "unscheduling is idempotent"


def test_scheduling_an_ended_event_explains_why(client, recall_emulator, calendar):
    past = datetime.now(UTC) - timedelta(hours=3)
    event = recall_emulator.add_event(
        calendar["id"], start_time=past, end_time=past + timedelta(minutes=30)
    )
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        client.schedule_bot(event["id"], deduplication_key="k", bot_config={})
    assert excinfo.value.code == "invalid_request_data"
    assert "Cannot schedule bot as calendar event has ended." in str(excinfo.value)


# Bots (v1) ---------------------------------------------------------------------------------------


def test_self_managed_bot_lifecycle(client):
    join_at = future(60)
    bot = client.create_bot(
        meeting_url="https://zoom.us/j/123456789",
        join_at=join_at,
        bot_name="Notetaker",
        metadata={"event": "evt-1"},
    )
    assert bot["id"]
    assert client.retrieve_bot(bot["id"])["id"] == bot["id"]
    assert client.update_bot(bot["id"], bot_name="Renamed")["bot_name"] == "Renamed"

    other = client.create_bot(meeting_url="https://meet.google.com/abc-defg-hij", join_at=join_at)
    assert {b["id"] for b in client.list_bots()} == {bot["id"], other["id"]}
    assert [b["id"] for b in client.list_bots(metadata__event="evt-1")] == [bot["id"]]
    assert len(list(client.list_bots(join_at_after=future(30)))) == 2
    assert list(client.list_bots(join_at_after=future(90))) == []

    assert client.delete_bot(bot["id"]) is None
    with pytest.raises(RecallNotFoundError):
        client.retrieve_bot(bot["id"])


def test_create_bot_without_meeting_url_is_invalid(client):
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        client.create_bot(bot_name="No meeting")
    assert "meeting_url" in excinfo.value.errors


# Faults ------------------------------------------------------------------------------------------


def announced_wait(record: logging.LogRecord) -> float:
    """The wait a retry's warning announces ("... retry 1 of 2 in 0.15s"), which it then sleeps."""
    return float(re.search(r" in ([0-9.]+)s$", record.getMessage()).group(1))


def test_429_waits_retry_after_then_succeeds(recall_emulator, caplog):
    client = fast_client(recall_emulator, retry_after_cap=0.2)
    recall_emulator.inject_fault("429", count=1, retry_after=0.15)
    assert list(client.list_calendars()) == []
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 1
    assert "GET /api/v2/calendars/ failed (429); retry 1 of 2" in retries[0].getMessage()
    assert 0.15 <= announced_wait(retries[0]) <= 0.2  # Retry-After, within the cap


def test_retry_after_is_capped(recall_emulator, caplog):
    client = fast_client(recall_emulator, retry_after_cap=0.05)
    recall_emulator.inject_fault("429", count=1, retry_after=30)
    assert list(client.list_bots()) == []
    [retry] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert announced_wait(retry) == 0.05


def test_persistent_429_is_a_rate_limit_error(recall_emulator):
    client = fast_client(recall_emulator)
    recall_emulator.inject_fault("429", count=10, retry_after=0)
    with pytest.raises(RecallRateLimitError) as excinfo:
        list(client.list_calendars())
    assert excinfo.value.status_code == 429
    assert len(requests_to(recall_emulator, "GET", "/api/v2/calendars/")) == 3


@pytest.mark.parametrize("kind", ["409", "500", "502", "503", "504", "507"])
def test_retryable_status_is_retried_then_succeeds(client, recall_emulator, kind, caplog):
    calendar = create_calendar(client)
    recall_emulator.inject_fault(kind, count=2)
    assert fast_client(recall_emulator).retrieve_calendar(calendar["id"])["id"] == calendar["id"]
    assert len(requests_to(recall_emulator, "GET", "/api/v2/calendars/")) == 3
    assert [f"({kind})" in r.getMessage() for r in caplog.records if r.levelno == 30] == [True] * 2


@pytest.mark.parametrize("kind", ["409", "500", "502", "503", "504", "507"])
def test_retryable_status_that_persists_is_a_server_error(recall_emulator, kind):
    recall_emulator.inject_fault(kind, count=10)
    with pytest.raises(RecallServerError) as excinfo:
        fast_client(recall_emulator).retrieve_bot("00000000-0000-0000-0000-000000000000")
    assert excinfo.value.status_code == int(kind)
    assert len(requests_to(recall_emulator, "GET", "/api/v1/bot/")) == 3


def test_a_500_on_a_listing_is_retried_like_any_other_call(recall_emulator):
    recall_emulator.inject_fault("500", count=1)
    assert list(fast_client(recall_emulator).list_bots()) == []
    assert len(requests_to(recall_emulator, "GET", "/api/v1/bot/")) == 2


@pytest.mark.parametrize(
    ("path", "create"),
    [
        ("/api/v2/calendars/", create_calendar),
        ("/api/v1/bot/", lambda client: client.create_bot(meeting_url="https://zoom.us/j/1")),
    ],
)
def test_a_create_answered_500_after_recall_acted_is_replayed_not_doubled(
    recall_emulator, path, create
):
    """Recall made the object, then failed (500): the retry, under the same key, gets the first
    answer, so there is exactly one object."""
    recall_emulator.inject_fault("applied_500", count=1, path=path)
    created = create(fast_client(recall_emulator))
    first, second = requests_to(recall_emulator, "POST", path)
    assert (first.status, second.status) == (500, 201)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    objects = recall_emulator.calendars if "calendars" in path else recall_emulator.bots
    assert list(objects) == [created["id"]]


def test_a_delete_answered_500_after_recall_acted_counts_as_done(client, recall_emulator):
    calendar = create_calendar(client)
    recall_emulator.inject_fault("applied_500", count=1, path="/api/v2/calendars/")
    assert fast_client(recall_emulator).delete_calendar(calendar["id"]) is None
    assert recall_emulator.calendars == {}


def test_gateway_html_page_becomes_a_readable_message(recall_emulator):
    recall_emulator.inject_fault("502", count=10)
    with pytest.raises(RecallServerError) as excinfo:
        list(fast_client(recall_emulator, max_retries=0).list_calendars())
    assert "HTML page (502 Bad Gateway)" in excinfo.value.message


@pytest.mark.parametrize("kind", ["409", "429", "503", "507"])
def test_create_calendar_is_retried_when_recall_certainly_did_not_apply_it(recall_emulator, kind):
    recall_emulator.inject_fault(kind, count=1, path="/api/v2/calendars/", retry_after=0)
    created = create_calendar(fast_client(recall_emulator))
    assert len(requests_to(recall_emulator, "POST", "/api/v2/calendars/")) == 2
    assert list(recall_emulator.calendars) == [created["id"]]


@pytest.mark.parametrize("kind", ["502", "504"])
def test_creates_are_repeated_after_a_gateway_error(recall_emulator, kind):
    client = fast_client(recall_emulator)
    recall_emulator.inject_fault(kind, count=1, path="/api/v2/calendars/")
    create_calendar(client)
    recall_emulator.inject_fault(kind, count=1, path="/api/v1/bot/")
    client.create_bot(meeting_url="https://zoom.us/j/1")
    assert len(requests_to(recall_emulator, "POST", "/api/v2/calendars/")) == 2
    assert len(requests_to(recall_emulator, "POST", "/api/v1/bot/")) == 2
    assert len(recall_emulator.calendars) == len(recall_emulator.bots) == 1


def test_schedule_bot_is_repeated_after_a_gateway_error(client, recall_emulator, calendar):
    event = recall_emulator.add_event(calendar["id"], start_time=future(120))
    recall_emulator.inject_fault("504", count=1, path="/api/v2/calendar-events/")
    scheduled = fast_client(recall_emulator).schedule_bot(
        event["id"], deduplication_key="k", bot_config={}
    )
    assert len(scheduled["bots"]) == 1
    assert len(recall_emulator.bots) == 1


def test_stall_past_the_timeout_is_retried_for_reads(recall_emulator, caplog):
    recall_emulator.inject_fault("stall", count=1, seconds=1.0)
    assert list(fast_client(recall_emulator, timeout=0.2).list_calendars()) == []
    [retry] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "GET /api/v2/calendars/ failed (ReadTimeout" in retry.getMessage()  # not the stall's end
    assert len(requests_to(recall_emulator, "GET", "/api/v2/calendars/")) == 2


@pytest.mark.parametrize(
    ("path", "create"),
    [
        ("/api/v2/calendars/", create_calendar),
        ("/api/v1/bot/", lambda client: client.create_bot(meeting_url="https://zoom.us/j/1")),
    ],
)
def test_a_create_that_timed_out_is_repeated_and_makes_one_object(recall_emulator, path, create):
    """Recall applied the first try but answered too late; the retry, under the same key, gets
    the first answer instead of a second object."""
    recall_emulator.inject_fault("stall", count=1, seconds=0.6, path=path)
    created = create(fast_client(recall_emulator, timeout=0.2, max_retries=3))
    tries = requests_to(recall_emulator, "POST", path)
    assert len(tries) == 2
    assert tries[0].headers["idempotency-key"] == tries[1].headers["idempotency-key"]
    objects = recall_emulator.calendars if "calendars" in path else recall_emulator.bots
    assert list(objects) == [created["id"]]


def test_every_post_and_patch_carries_its_own_idempotency_key(client, recall_emulator):
    first = create_calendar(client)
    create_calendar(client, idempotency_key="connect-alice")
    client.update_calendar(first["id"], oauth_email="a@example.com")
    client.retrieve_calendar(first["id"])
    client.delete_calendar(first["id"])
    keys = [(r.method, r.headers.get("idempotency-key")) for r in recall_emulator.requests]
    assert [method for method, _ in keys] == ["POST", "POST", "PATCH", "GET", "DELETE"]
    assert keys[1][1] == "connect-alice"
    assert len({keys[0][1], keys[1][1], keys[2][1]}) == 3 and None not in dict(keys[:3]).values()
    assert keys[3][1] is None and keys[4][1] is None


def test_a_caller_key_replays_the_first_create(client, recall_emulator):
    """One logical operation spread over two calls (a worker that crashed and ran again)."""
    first = create_calendar(client, idempotency_key="connect-alice")
    again = create_calendar(client, idempotency_key="connect-alice")
    assert again["id"] == first["id"] and len(recall_emulator.calendars) == 1


def test_persistent_stall_is_a_connection_error_after_every_retry(recall_emulator):
    recall_emulator.inject_fault("stall", count=10, seconds=0.5)
    with pytest.raises(RecallConnectionError, match="no answer in time"):
        fast_client(recall_emulator, timeout=0.1, max_retries=1).retrieve_bot("b")
    assert len(requests_to(recall_emulator, "GET", "/api/v1/bot/")) == 2


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_then_a_connection_error(closed_port, caplog):
    client = RecallClient(
        "key",
        f"http://127.0.0.1:{closed_port}",
        max_retries=2,
        backoff_base=0.001,
        backoff_cap=0.002,
    )
    with pytest.raises(RecallConnectionError) as excinfo:
        client.create_calendar(
            platform="google_calendar",
            oauth_client_id="id",
            oauth_client_secret=CLIENT_SECRET,
            oauth_refresh_token=REFRESH_TOKEN,
        )
    assert "Could not reach Recall" in str(excinfo.value)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, "nothing was sent, so even a create is retried"
    assert "POST /api/v2/calendars/ failed (ConnectionError); retry 1 of 2" in warnings[0]


# Secrets -----------------------------------------------------------------------------------------


def test_no_secret_in_logs_or_errors_during_failing_calls(recall_emulator, caplog, closed_port):
    caplog.set_level(logging.DEBUG)
    client = fast_client(recall_emulator, timeout=0.2)
    texts = []

    def capture(call):
        with pytest.raises(Exception) as excinfo:
            call()
        texts.extend([str(excinfo.value), repr(excinfo.value)])
        texts.append(repr(getattr(excinfo.value, "errors", None)))

    recall_emulator.inject_fault("503", count=10, path="/api/v2/calendars/")
    capture(lambda: create_calendar(client))
    recall_emulator.clear_faults()
    capture(lambda: create_calendar(client, platform="bogus"))
    recall_emulator.inject_fault("stall", count=3, seconds=0.5, path="/api/v2/calendars/")
    capture(lambda: create_calendar(client))
    recall_emulator.inject_fault("502", count=10)
    capture(lambda: client.update_calendar("cal", oauth_client_secret=CLIENT_SECRET))
    offline = RecallClient(
        recall_emulator.api_key,
        f"http://127.0.0.1:{closed_port}",
        max_retries=1,
        backoff_base=0.001,
        backoff_cap=0.001,
    )
    capture(lambda: create_calendar(offline))
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(client), repr(offline)]

    assert any("retry" in text for text in texts)
    for secret in (recall_emulator.api_key, CLIENT_SECRET, REFRESH_TOKEN):
        assert not [text for text in texts if secret in text], secret


def test_unscheduling_the_bot_of_a_missing_event_is_not_found_even_after_a_repeat(recall_emulator):
    """Removing a managed bot is idempotent at Recall (200 while the event exists), so a 404 to a
    repeat after a 502 means the event is gone, not "already done": it returned None where the
    updated event was promised, and scheduling crashed reading its ``bots``."""
    missing = "00000000-0000-4000-8000-000000000001"
    recall_emulator.inject_fault("502", count=1, path=f"/api/v2/calendar-events/{missing}/bot/")

    with pytest.raises(RecallNotFoundError):
        fast_client(recall_emulator).unschedule_bot(missing)
