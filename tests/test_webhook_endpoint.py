"""The webhook endpoint: what it accepts, what it refuses, and that a refusal processes nothing.

Each behaviour is checked through both doors (the ``door`` fixture): the Django view and the WSGI
door in front of Django answer alike."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from django_recall_calendar.views.webhook import WebhookView
from tests import builders
from tests.webhook_doors import OTHER_SECRET, SECRET, envelope, environ, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(recall_emulator, settings):
    """An emulator that logs any call to Recall (none expected), with this module's secret."""
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_SECRET": SECRET}
    return recall_emulator


def _without(name: str):
    def build():
        body = envelope()
        headers = sign(body)
        del headers[name]
        return body, headers

    return build


def _signed(body: bytes, **options):
    return lambda: (body, sign(body, **options))


def _tampered():
    body = envelope()
    return body.replace(b"calendar.update", b"calendar.updatf"), sign(body)


def _with_signature(value: str):
    def build():
        body = envelope()
        return body, {**sign(body), "webhook-signature": value}

    return build


def _with_timestamp(value: str):
    def build():
        body = envelope()
        return body, {**sign(body), "webhook-timestamp": value}

    return build


BAD_INPUTS = {
    "no headers": lambda: (envelope(), {}),
    "webhook-id missing": _without("webhook-id"),
    "webhook-timestamp missing": _without("webhook-timestamp"),
    "webhook-signature missing": _without("webhook-signature"),
    "wrong secret": _signed(envelope(), secret=OTHER_SECRET),
    "tampered body": _tampered,
    "stale timestamp (6 min old)": lambda: (
        envelope(),
        sign(envelope(), timestamp=datetime.now(tz=UTC) - timedelta(minutes=6)),
    ),
    "future timestamp (6 min ahead)": lambda: (
        envelope(),
        sign(envelope(), timestamp=datetime.now(tz=UTC) + timedelta(minutes=6)),
    ),
    "signature without version": _with_signature("garbage"),
    "signature with bad base64": _with_signature("v1,!!!not-base64!!!"),
    "signature with unknown version only": _with_signature("v2,c2lnbmF0dXJl"),
    "timestamp not a number": _with_timestamp("yesterday"),
    "signed body not JSON": _signed(b"event=calendar.update"),
    "body not UTF-8": lambda: (b"\xe9\xff", sign(envelope())),
    "signed body not UTF-8": _signed(b'{"event": "bot.done", "data": {"name": "\xe9"}}'),
    "signed body in UTF-16": _signed('{"event": "bot.done", "data": {}}'.encode("utf-16")),
    "signed JSON list": _signed(b'[{"event": "calendar.update", "data": {}}]'),
    "envelope without data": _signed(b'{"event": "calendar.update"}'),
    "data not an object": _signed(b'{"event": "calendar.update", "data": "x"}'),
    "event not a string": _signed(b'{"event": 7, "data": {}}'),
    "svix-style type envelope": _signed(b'{"type": "calendar.update", "data": {}}'),
    "Infinity, not JSON": _signed(b'{"event": "calendar.update", "data": {"x": Infinity}}'),
    "NaN, not JSON": _signed(b'{"event": "calendar.update", "data": {"x": NaN}}'),
    "event type too long": _signed(envelope("calendar." + "x" * 200)),
    "message id too long": _signed(envelope(), msg_id="msg_" + "x" * 300),
    "deeply nested JSON": _signed(b"[" * 100_000 + b"]" * 100_000),
    # Python's json reads these too; JSON, SQLite's JSON_VALID and PostgreSQL's jsonb do not.
    "-Infinity, not JSON": _signed(b'{"event": "calendar.update", "data": {"n": -Infinity}}'),
    "number too large for a float (Infinity)": _signed(
        b'{"event": "bot.done", "data": {"n": 1e400}}'
    ),
}


@pytest.mark.parametrize("build", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_with_a_reason_and_nothing_processed(door, emulator, build):
    body, headers = build()

    response = door.post(body, headers)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not WebhookDelivery.objects.exists()
    assert emulator.requests == []


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_other_methods_are_not_allowed(door, secret, method):
    body = envelope()

    response = door.send(environ(body, sign(body), method=method))

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert not WebhookDelivery.objects.exists()


def test_oversized_body_is_refused_by_content_length_without_reading_it(door, secret):
    limit = 1024 * 1024
    stream = io.BytesIO(b"x" * (limit + 10))

    response = door.post(b"", {}, CONTENT_LENGTH=str(limit + 10), **{"wsgi.input": stream})

    assert (response.status_code, response.json()) == (
        413,
        {"detail": "Request body is too large."},
    )
    assert stream.tell() == 0
    assert not WebhookDelivery.objects.exists()


def test_a_body_longer_than_its_content_length_is_read_only_as_far_as_declared(door, secret):
    """Read further, a server's stream may wait for bytes that never come; the rest is not the
    signed body."""
    body = envelope()
    stream = io.BytesIO(body + b"x" * 1000)

    response = door.post(b"", sign(body), CONTENT_LENGTH=str(len(body)), **{"wsgi.input": stream})

    assert (response.status_code, response.json()) == (200, {"status": "received"})
    assert stream.tell() == len(body)
    assert WebhookDelivery.objects.get().payload == json.loads(body)


def test_body_is_read_for_at_most_limit_plus_one_bytes(secret):
    """A Content-Length under the limit that lies: the stream is still read only up to the limit."""
    limit = 1024 * 1024
    stream = io.BytesIO(b"x" * (limit * 3))
    request = RequestFactory().generic("POST", "/recall/webhooks/", **{"wsgi.input": stream})
    request.META["CONTENT_LENGTH"] = ""
    request._stream = stream  # a server that does not bound the stream by Content-Length

    response = WebhookView.as_view()(request)

    assert response.status_code == 413
    assert stream.tell() == limit + 1


def test_body_at_the_limit_is_accepted_and_one_byte_more_is_not(door, secret, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_MAX_BODY_SIZE": 4096}
    base = json.loads(envelope("recording.done"))
    base["data"]["pad"] = ""
    padding = 4096 - len(json.dumps(base).encode())
    base["data"]["pad"] = "p" * padding
    at_limit = json.dumps(base).encode()
    assert len(at_limit) == 4096
    over = json.dumps({**base, "data": {**base["data"], "pad": "p" * (padding + 1)}}).encode()

    assert door.post(at_limit, sign(at_limit)).status_code == 200
    response = door.post(over, sign(over))

    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 1


def test_no_secret_refuses_every_delivery_and_logs_why(door, settings, caplog):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_SECRET": None}
    body = envelope()

    with caplog.at_level(logging.ERROR, logger="django_recall_calendar"):
        response = door.post(body, sign(body))

    assert response.status_code == 503
    assert not WebhookDelivery.objects.exists()
    assert "WEBHOOK_SECRET" in caplog.text


def test_an_unusable_secret_counts_as_none(door, settings, caplog):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_SECRET": "whsec_%%%"}
    body = envelope()

    with caplog.at_level(logging.ERROR, logger="django_recall_calendar"):
        response = door.post(body, sign(body))

    assert response.status_code == 503
    assert "%%%" not in caplog.text  # the secret itself is never logged


@pytest.mark.parametrize("legacy", [False, True], ids=["webhook-headers", "svix-headers"])
def test_both_header_styles_are_accepted(door, secret, legacy):
    body = envelope("recording.done")
    headers = sign(body, legacy=legacy)

    response = door.post(body, headers)

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.message_id == headers[f"{'svix' if legacy else 'webhook'}-id"]


def test_secret_rotation_accepts_old_and_new_secret_only(door, settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "WEBHOOK_SECRET": [SECRET, OTHER_SECRET],
    }
    third = "whsec_" + "WllZWVlZWVlZWVlZWVlZWVlZWVlZWVla"

    statuses = [
        door.post(body, sign(body, secret=key)).status_code
        for key in (SECRET, OTHER_SECRET, third)
        for body in [envelope("recording.done")]
    ]

    assert statuses == [200, 200, 400]
    assert WebhookDelivery.objects.count() == 2


@pytest.fixture(params=["insert-returning", "savepoint-fallback"])
def insert_path(request, monkeypatch):
    """Both ways of storing a delivery once: the single upsert statement, and the savepoint path
    used by databases that cannot return columns from an INSERT (e.g. MySQL)."""
    if request.param == "savepoint-fallback":
        if connection.vendor == "postgresql":
            pytest.skip("psycopg needs RETURNING for every insert; the fallback runs on SQLite")
        monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    return request.param


def test_a_duplicate_is_acknowledged_and_stored_once(door, secret, insert_path):
    body = envelope("recording.done")
    headers = sign(body)

    first = door.post(body, headers)
    second = door.post(body, headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"status": "duplicate"}
    assert WebhookDelivery.objects.count() == 1


def test_a_delivery_is_linked_to_its_known_calendar(door, secret, insert_path):
    calendar = builders.calendar()
    body = envelope("calendar.update", calendar_id=str(calendar.recall_id))

    assert door.post(body, sign(body)).status_code == 200

    assert WebhookDelivery.objects.get().calendar == calendar


@pytest.mark.parametrize(
    "event", ["bot.log", "bot.status_change", "recording.done", "transcript.done", "calendar.x"]
)
def test_other_event_types_are_stored_ignored_with_the_reason(door, emulator, event):
    body = envelope(event)

    response = door.post(body, sign(body))

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.IGNORED
    assert event in delivery.last_error
    assert delivery.payload == json.loads(body)
    assert emulator.requests == []


def test_recording_costs_a_fixed_handful_of_queries(door, secret, django_assert_max_num_queries):
    """Calendar lookup, savepoint, insert, release (or rollback): the acknowledgement stays fast."""
    body = envelope("recording.done")
    headers = sign(body)

    with django_assert_max_num_queries(4):
        assert door.post(body, headers).json() == {"status": "ignored"}
    with django_assert_max_num_queries(5):
        assert door.post(body, headers).json() == {"status": "duplicate"}


def test_a_rejected_delivery_is_logged_with_its_reason(door, secret, caplog):
    body = envelope()

    with caplog.at_level(logging.WARNING, logger="django_recall_calendar"):
        door.post(body, sign(body, secret=OTHER_SECRET))

    assert "No matching signature found" in caplog.text


def _data(text: str) -> bytes:
    """A body whose ``data`` is ``text`` as written (json.dumps would normalise it)."""
    return b'{"event": "recording.done", "data": ' + text.encode() + b"}"


#: Signed bodies that are JSON but unusual: each is stored from its text as sent, and the stored
#: payload must read back as what Python parsed, on every database.
UNUSUAL_JSON = {
    "duplicate keys (the last wins)": (
        b'{"event": "bot.log", "data": {"k": 1, "k": {"x": 2}}, "event": "recording.done"}'
    ),
    "byte order mark": b"\xef\xbb\xbf" + envelope("recording.done"),
    "JSON whitespace around and inside": b' \t\r\n{ "event" :"recording.done",\n"data":{ } }\r\n',
    "unicode escapes": _data(r'{"s": "\u00e9\ud83d\ude00\u2028\/\"\\\b\f\n\r\t", "\u006b": 1}'),
    "raw non-ASCII text": _data('{"s": "é 😀 \u2028 日本", "é": "ü"}'),
    "1.00000000000000000001 (read back as the float parsed)": _data(
        '{"n": 1.00000000000000000001}'
    ),
    "integers beyond 64 bits": _data('{"n": [' + "9" * 400 + ", -" + "1" * 40 + "]}"),
    "exponents and signs": _data('{"n": [-0, -0.0, 1E+2, 1e-2, 2.5e-7, 1e20, 1e-400]}'),
    "empty keys and strings": _data('{"": ["", {}, [], null, true, false]}'),
    "nesting of 200 levels": _data('{"deep": ' + "[" * 200 + "]" * 200 + "}"),
}


@pytest.mark.parametrize("body", UNUSUAL_JSON.values(), ids=UNUSUAL_JSON.keys())
def test_unusual_json_is_stored_as_parsed(door, secret, body):
    """The payload is stored from the body's text, not serialised again: whatever the spelling,
    the row reads back as the payload Python parsed (which decided the event type)."""
    response = door.post(body, sign(body))

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    delivery = WebhookDelivery.objects.get()
    parsed = json.loads(body.decode("utf-8-sig"))
    assert delivery.payload == parsed
    assert delivery.event_type == parsed["event"] == "recording.done"


def test_a_float_too_large_for_an_exact_integer_reads_back_as_the_same_number(door, secret):
    """PostgreSQL's jsonb keeps numbers as ``numeric`` and writes 1e308 out in digits, which reads
    back as an int; the number is the same (as it was when the parsed payload was serialised)."""
    body = _data('{"n": 1e308, "m": -1.5e300}')

    assert door.post(body, sign(body)).status_code == 200

    stored = WebhookDelivery.objects.get().payload["data"]
    assert (float(stored["n"]), float(stored["m"])) == (1e308, -1.5e300)


#: JSON that Python reads but PostgreSQL's jsonb refuses (SQLite stores it), and JSON nested deeper
#: than some readers read: Python 3.11 about 950 levels, 3.12 about 1,450, 3.13 far more; SQLite
#: 3.45's JSON_VALID 1,000, older SQLite 2,000.
STORABLE_ON_SOME_DATABASES = {
    "NUL character": (_data('{"note": "nul\\u0000byte"}'), {"postgresql"}),
    "lone surrogate": (_data('{"s": "\\ud800"}'), {"postgresql"}),
    "low surrogate first": (_data('{"s": "\\udc00\\ud800"}'), {"postgresql"}),
    "exponent beyond numeric": (_data('{"n": 1e-20000}'), {"postgresql"}),
    "nesting of 1,200 levels": (_data('{"deep": ' + "[" * 1200 + "]" * 1200 + "}"), set()),
}


@pytest.mark.parametrize(
    ("body", "refused_by"),
    STORABLE_ON_SOME_DATABASES.values(),
    ids=STORABLE_ON_SOME_DATABASES.keys(),
)
def test_a_payload_the_database_cannot_store_is_refused_never_a_server_error(
    door, secret, body, refused_by
):
    """Refused with a 400 the sender can read (and nothing stored); stored as parsed where the
    database takes it. Never a 5xx, which would hide the reason."""
    response = door.post(body, sign(body))

    if connection.vendor in refused_by:
        assert (response.status_code, response.json()) == (
            400,
            {"detail": "Payload cannot be stored"},
        )
        assert not WebhookDelivery.objects.exists()
    elif response.status_code == 400:  # nested deeper than this Python or this SQLite reads
        assert b"[[[[" in body
        refusal = response.json()["detail"]
        assert refusal == "Body is not JSON" or (
            connection.vendor == "sqlite" and refusal == "Payload cannot be stored"
        )
        assert not WebhookDelivery.objects.exists()
    else:
        assert response.status_code == 200
        assert WebhookDelivery.objects.get().payload == json.loads(body)


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/plain;q=1"])
def test_the_senders_accept_header_never_refuses_a_delivery(door, secret, accept):
    """Content negotiation is not ours to enforce: a signed delivery is stored whatever ``Accept``
    says (DRF answered 406 before verifying, and the delivery was never recorded)."""
    body = envelope("recording.done")

    accepted = door.post(body, {**sign(body), "Accept": accept})
    refused = door.post(body, {**sign(body, secret=OTHER_SECRET), "Accept": accept})

    assert (accepted.status_code, refused.status_code) == (200, 400)
    assert accepted.json() == {"status": "ignored"}
    assert WebhookDelivery.objects.count() == 1


def test_login_required_middleware_lets_recall_in_and_still_guards_the_pages(
    door, client, secret, settings
):
    """A host that turns on Django's LoginRequiredMiddleware keeps receiving webhooks (Recall has
    no session); its users' pages still need a login."""
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    body = envelope()

    response = door.post(body, sign(body))

    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 1
    page = client.get(reverse("recall_calendar:calendars"))
    assert page.status_code == 302 and "login" in page["Location"]


def test_csrf_checks_do_not_apply_to_the_signed_endpoint(door, secret):
    """With CSRF enforced as for a browser (Django's WSGI handler, not the test client, serves the
    doors), a signed delivery is still stored."""
    body = envelope()

    response = door.post(body, sign(body))

    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 1


def test_the_delivery_is_stored_before_the_answer_and_enqueued_once_after_it(
    door, secret, queued, django_capture_on_commit_callbacks
):
    """The server sends the answer, then closes it: only then is the processing enqueued, so a
    slow task queue never delays Recall, and the row it names already exists."""
    body = envelope("calendar.sync_events")

    with django_capture_on_commit_callbacks(execute=True):
        response = door.open(environ(body, sign(body)))
        delivery = WebhookDelivery.objects.get()
        assert (response.status_code, response.json()) == (200, {"status": "received"})
        assert response.headers["Content-Type"] == "application/json"
        assert queued.results == []
        response.close()

    [task] = queued.results
    assert (task.task.name, task.args) == ("process_webhook_deliveries", [[delivery.pk]])
    assert delivery.status == DeliveryStatus.RECEIVED


def test_an_answer_closed_twice_enqueues_its_delivery_once(
    door, secret, queued, django_capture_on_commit_callbacks
):
    body = envelope("calendar.sync_events")

    with django_capture_on_commit_callbacks(execute=True):
        response = door.open(environ(body, sign(body)))
        response.close()
        response.close()

    assert [task.args for task in queued.results] == [[[WebhookDelivery.objects.get().pk]]]


def test_a_duplicate_is_never_enqueued_again(
    door, secret, queued, django_capture_on_commit_callbacks
):
    body = envelope("calendar.sync_events")
    headers = sign(body)

    with django_capture_on_commit_callbacks(execute=True):
        first, second = door.post(body, headers), door.post(body, headers)

    assert (first.json(), second.json()) == ({"status": "received"}, {"status": "duplicate"})
    assert [task.args for task in queued.results] == [[[WebhookDelivery.objects.get().pk]]]


def test_a_refused_payload_leaves_the_next_delivery_unharmed(door, secret):
    """The insert's cursor is kept for the connection's next delivery, even after one failed."""
    refused, good = _data('{"note": "nul\\u0000byte"}'), envelope("recording.done")

    door.post(refused, sign(refused))
    response = door.post(good, sign(good))

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert WebhookDelivery.objects.filter(payload=json.loads(good)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_after_the_database_connection_closed_is_stored(door, secret):
    """The kept cursor belongs to the connection it was opened on: once Django closes it
    (``CONN_MAX_AGE``, a restarted database), the next delivery opens a new one."""
    first, second = envelope("recording.done"), envelope("recording.done")

    assert door.post(first, sign(first)).status_code == 200
    connection.close()
    assert door.post(second, sign(second)).status_code == 200

    assert WebhookDelivery.objects.count() == 2


def test_execute_wrappers_see_every_deliverys_insert(door, secret):
    """The insert goes through Django's cursor wrapper, the kept cursor too: query logging,
    ``execute_wrapper`` (and django_assert_num_queries) see each delivery's statement."""
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        for body in (envelope("recording.done"), envelope("recording.done")):
            assert door.post(body, sign(body)).status_code == 200

    assert sum(sql.startswith("INSERT") and "ON CONFLICT" in sql for sql in seen) == 2
