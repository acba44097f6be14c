"""Random bodies and headers at the webhook endpoint: never a 5xx, never an unsigned one stored.

Unsigned requests carry random signature headers, plausible ones (a real-looking ``v1,`` entry, a
current timestamp) and none at all; signed ones carry random bodies under a valid signature, which
the endpoint must still refuse (400) unless they are Recall's envelope.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from django_recall_calendar.models import WebhookDelivery
from django_recall_calendar.testing import signed_headers

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree; each run explores afresh
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER_NAMES = ("webhook", "svix")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["calendar.update", "calendar.sync_events", "bot.done"])
        | st.text(max_size=120)
        | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "calendar_id": st.uuids().map(str) | st.text(max_size=80) | json_values,
                "last_updated_ts": st.text(max_size=40) | json_values,
            },
        )
        | json_values,
    },
)
bodies = (
    st.binary(max_size=600)
    | envelopes.map(lambda value: json.dumps(value).encode())
    | json_values.map(lambda value: json.dumps(value).encode())
)
signature_entries = st.binary(min_size=1, max_size=48).map(
    lambda raw: "v1," + base64.b64encode(raw).decode()
) | st.text(max_size=80)
timestamps = (
    st.integers(min_value=-(2**40), max_value=2**40).map(str)
    | st.just("now")
    | st.text(max_size=12)
)
unsigned_headers = st.tuples(
    st.sampled_from(HEADER_NAMES),
    st.text(max_size=40),
    timestamps,
    st.lists(signature_entries, max_size=3).map(" ".join),
    st.sets(st.sampled_from(["id", "timestamp", "signature"])),
)


def post(body: bytes, headers: dict[str, str], content_type: str = "application/json"):
    return Client().post(
        reverse("recall_calendar:webhook"), data=body, content_type=content_type, headers=headers
    )


def header_dict(prefix: str, message_id: str, stamp: str, signature: str, dropped: set) -> dict:
    values = {
        "id": message_id,
        "timestamp": str(int(time.time())) if stamp == "now" else stamp,
        "signature": signature,
    }
    return {f"{prefix}-{name}": value for name, value in values.items() if name not in dropped}


@PROPERTY
@given(
    body=bodies,
    headers=unsigned_headers,
    content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream"]),
)
def test_unsigned_requests_are_refused_and_never_stored(body, headers, content_type):
    response = post(body, header_dict(*headers), content_type)

    assert response.status_code == 400, response.content
    assert not WebhookDelivery.objects.exists()


#: Bodies Python's json reads but JSON does not (json.dumps writes NaN and Infinity unless told
#: not to): the random floats above reach them only now and then, these every run.
NON_STANDARD_JSON = [
    b'{"event": "calendar.sync_events", "data": {"calendar_id": NaN}}',
    b'{"event": "calendar.update", "data": {"calendar_id": "x", "n": Infinity}}',
    b'{"event": "bot.done", "data": {"n": [-Infinity]}}',
    b'{"event": "recording.done", "data": {"n": 1e999}}',
]


@PROPERTY
@given(body=bodies, message_id=st.text(min_size=1, max_size=300), legacy=st.booleans())
@example(body=NON_STANDARD_JSON[0], message_id="msg_nan", legacy=False)
@example(body=NON_STANDARD_JSON[1], message_id="msg_inf", legacy=True)
@example(body=NON_STANDARD_JSON[2], message_id="msg_minus_inf", legacy=False)
@example(body=NON_STANDARD_JSON[3], message_id="msg_overflow", legacy=False)
def test_signed_random_bodies_never_cause_a_server_error(body, message_id, legacy):
    secret = django_settings.RECALL_CALENDAR["WEBHOOK_SECRET"]
    try:
        headers = signed_headers(secret, body, message_id=message_id, legacy=legacy)
    except (UnicodeDecodeError, ValueError):
        return  # not signable: svix signs text
    headers.pop("content-type")
    before = WebhookDelivery.objects.count()

    response = post(body, headers)

    assert response.status_code in (200, 400), response.content
    stored = WebhookDelivery.objects.count() - before
    if response.status_code == 400:
        assert stored == 0
    else:
        payload = json.loads(body)
        assert isinstance(payload.get("event"), str) and isinstance(payload.get("data"), dict)
