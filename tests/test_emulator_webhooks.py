"""The emulator's webhooks (Svix-signed, as Recall sends them), its faults, and its CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from svix.webhooks import Webhook, WebhookVerificationError

from django_recall_calendar.models import WebhookDelivery
from django_recall_calendar.testing import RecallEmulator, signed_headers
from django_recall_calendar.testing.pytest_plugin import DjangoClientDelivery

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Inbox:
    """A webhook target that records what it received and answers 200."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((body, headers))
        return self.status


class Receiver(ThreadingHTTPServer):
    """A real HTTP endpoint on 127.0.0.1 recording POSTed webhooks."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = threading.Event()
        received, arrived = self.received, self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/recall/"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
def emulator(inbox):
    # Kind: these tests follow the plumbing one message at a time (unruly delivery: test_unruly).
    with RecallEmulator(webhook_url=inbox, unruly=False) as running:
        yield running


def verify(body: bytes, headers: dict[str, str], secret: str = SECRET) -> None:
    """svix's own check (raises WebhookVerificationError)."""
    Webhook(secret).verify(body, headers)


# ----- signing --------------------------------------------------------------------------------
@pytest.mark.parametrize("legacy", [False, True], ids=["webhook-headers", "svix-headers"])
def test_deliveries_are_svix_signed(inbox, legacy):
    with RecallEmulator(webhook_url=inbox, legacy_headers=legacy, unruly=False) as emulator:
        calendar = emulator.create_calendar()
        emulator.connect_calendar(calendar["id"])
        event = emulator.add_event(calendar["id"])

    prefix = "svix" if legacy else "webhook"
    bodies = []
    for body, headers in inbox.received:
        assert set(headers) >= {f"{prefix}-id", f"{prefix}-timestamp", f"{prefix}-signature"}
        assert headers[f"{prefix}-id"].startswith("msg_")
        verify(body, headers)
        bodies.append(json.loads(body))
    assert bodies == [
        {"event": "calendar.update", "data": {"calendar_id": calendar["id"]}},
        {
            "event": "calendar.sync_events",
            "data": {
                "calendar_id": calendar["id"],
                "last_updated_ts": datetime.fromisoformat(event["updated_at"]).isoformat(),
            },
        },
    ]
    assert len({h[f"{prefix}-id"] for _, h in inbox.received}) == 2


def test_redelivery_keeps_the_message_id(emulator, inbox):
    first = emulator.send_webhook("calendar.update", {"calendar_id": "c1"})

    again = emulator.redeliver(first)

    assert again.id == first.id and again.body == first.body
    assert inbox.received[1][1]["webhook-id"] == first.id
    verify(*inbox.received[1])
    assert [d.id for d in emulator.deliveries] == [first.id, first.id]


@pytest.mark.parametrize(
    "options",
    [
        {"bad_signature": True},
        {"tamper": True},
        {"timestamp": datetime.now(UTC) - timedelta(minutes=10)},
        {"secret": "whsec_" + "C" * 32},
    ],
    ids=["bad-signature", "tampered", "stale", "other-secret"],
)
def test_broken_deliveries_fail_verification(emulator, inbox, options):
    delivery = emulator.send_webhook("calendar.update", {"calendar_id": "c1"}, **options)

    assert delivery.status == 200  # the target answered; verifying is its job
    with pytest.raises(WebhookVerificationError):
        verify(*inbox.received[-1])


def test_chosen_message_id_and_header_style(emulator, inbox):
    emulator.send_webhook("calendar.update", {}, message_id="msg_fixed", legacy_headers=True)

    assert inbox.received[-1][1]["svix-id"] == "msg_fixed"


def test_signed_headers_helper_signs_any_body(emulator):
    body = b'{"event": "calendar.update", "data": {"calendar_id": "x"}}'

    headers = emulator.signed_headers(body)
    verify(body, headers)
    legacy = signed_headers(SECRET, body, message_id="msg_1", legacy=True)
    assert legacy["svix-id"] == "msg_1"
    verify(body, legacy)


# ----- delivery targets ---------------------------------------------------------------------------
def test_url_target_receives_over_http(receiver):
    with RecallEmulator(webhook_url=receiver.url) as emulator:
        delivery = emulator.send_calendar_update("c1")

    assert delivery.status == 204 and delivery.ok
    body, headers = receiver.received[0]
    verify(body, headers)


def test_unreachable_target_is_recorded_not_raised():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RecallEmulator(webhook_url=f"http://127.0.0.1:{port}/") as emulator:
        delivery = emulator.send_calendar_update("c1")

    assert delivery.status is None and "ConnectionError" in delivery.error


def test_a_failing_callable_target_is_recorded(emulator):
    def explode(body, headers):
        raise ValueError("receiver broke")

    emulator.webhook_url = explode
    delivery = emulator.send_calendar_update("c1")

    assert delivery.error == "ValueError: receiver broke" and not delivery.ok


def test_api_caused_webhooks_wait_for_deliver_pending(emulator, inbox):
    calendar = emulator.create_calendar()
    emulator.disconnect_calendar(calendar["id"])
    inbox.received.clear()

    answer = requests.patch(
        f"{emulator.base_url}/api/v2/calendars/{calendar['id']}/",
        json={},
        headers={"Authorization": "Token test-api-key"},
        timeout=5,
    )

    assert answer.status_code == 200 and inbox.received == []
    (delivery,) = emulator.deliver_pending()
    assert delivery.event == "calendar.update" and len(inbox.received) == 1
    assert emulator.deliver_pending() == []


def test_api_caused_webhooks_reach_a_url_target_by_themselves(receiver):
    with RecallEmulator(webhook_url=receiver.url) as emulator:
        calendar = emulator.create_calendar()
        emulator.disconnect_calendar(calendar["id"])
        receiver.arrived.clear()
        requests.patch(
            f"{emulator.base_url}/api/v2/calendars/{calendar['id']}/",
            json={"oauth_refresh_token": "new"},
            headers={"Authorization": "Token test-api-key"},
            timeout=5,
        )
        assert receiver.arrived.wait(5)


def test_the_receiver_may_call_the_api_back_while_handling(emulator):
    seen = []

    def receiver(body, headers):
        calendar_id = json.loads(body)["data"]["calendar_id"]
        answer = requests.get(
            f"{emulator.base_url}/api/v2/calendars/{calendar_id}/",
            headers={"Authorization": "Token test-api-key"},
            timeout=2,
        )
        seen.append(answer.json()["status"])
        return 200

    emulator.webhook_url = receiver
    calendar = emulator.create_calendar()
    emulator.connect_calendar(calendar["id"])

    assert seen == ["connected"]


def test_send_sync_events_defaults_to_the_oldest_change(emulator, inbox):
    calendar = emulator.create_calendar()
    events = emulator.add_events(calendar["id"], 3, notify=False)

    delivery = emulator.send_sync_events(calendar["id"])

    stamp = datetime.fromisoformat(delivery.payload["data"]["last_updated_ts"])
    assert stamp == datetime.fromisoformat(events[0]["updated_at"])


# ----- the pytest fixture's in-process delivery ------------------------------------------------
@pytest.mark.django_db
def test_fixture_delivers_to_the_apps_webhook_view(recall_emulator):
    assert isinstance(recall_emulator.webhook_url, DjangoClientDelivery)

    delivery = recall_emulator.send_calendar_update("8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00")

    assert delivery.error is None
    assert 200 <= delivery.status < 300  # the app acknowledges (and ignores) an unknown calendar


@pytest.mark.django_db
def test_fixture_delivery_of_a_bad_signature_is_refused(recall_emulator):
    delivery = recall_emulator.send_webhook("calendar.update", {"calendar_id": "x"}, tamper=True)

    assert delivery.status == 400


@pytest.mark.django_db
@pytest.mark.recall_emulator(webhooks=False)
def test_the_marker_keeps_webhooks_recorded_not_delivered(recall_emulator):
    delivery = recall_emulator.send_calendar_update("8b7bd4a4-35b8-4b8a-9a5e-4f7d1c7a1d00")

    assert recall_emulator.deliveries == [delivery]
    assert delivery.status is None and delivery.error is None
    assert not WebhookDelivery.objects.exists()


@pytest.mark.recall_emulator(api_key="key-of-the-marker", page_size=2)
def test_the_markers_other_options_reach_the_emulator_and_the_settings(recall_emulator, settings):
    assert settings.RECALL_CALENDAR["API_KEY"] == recall_emulator.api_key == "key-of-the-marker"
    calendar = recall_emulator.create_calendar()
    recall_emulator.add_events(calendar["id"], 3, notify=False)
    answer = requests.get(
        f"{recall_emulator.base_url}/api/v2/calendar-events/",
        headers={"Authorization": "Token key-of-the-marker"},
        timeout=5,
    )
    assert len(answer.json()["results"]) == 2 and answer.json()["next"]


@pytest.mark.django_db
def test_unrouted_webhook_url_is_recorded(recall_emulator, settings):
    settings.ROOT_URLCONF = "social_django.urls"  # a URLconf without the app's routes

    delivery = recall_emulator.send_calendar_update("c1")

    assert delivery.status is None and "NoReverseMatch" in delivery.error


# ----- faults -------------------------------------------------------------------------------------
def get(emulator, path="/api/v2/calendars/", **kwargs):
    return requests.get(
        emulator.base_url + path, headers={"Authorization": "Token test-api-key"}, **kwargs
    )


def test_429_with_retry_after_for_the_next_n_requests(emulator):
    emulator.inject_fault("429", count=2, retry_after=3)

    answers = [get(emulator, timeout=5) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert "throttled" in answers[0].json()["detail"]
    assert [r.fault for r in emulator.requests] == ["429", "429", None]
    assert [r.status for r in emulator.requests] == [429, 429, 200]


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [
        ("500", "application/json"),
        ("502", "text/html"),
        ("503", "text/html"),
        ("504", "text/html"),
        ("507", "application/json"),
        ("409", "application/json"),
    ],
)
def test_server_error_faults(emulator, kind, content_type):
    emulator.inject_fault(kind)

    answer = get(emulator, timeout=5)

    assert answer.status_code == int(kind)
    assert answer.headers["Content-Type"].startswith(content_type)
    assert get(emulator, timeout=5).status_code == 200


def test_faults_can_target_a_path(emulator):
    emulator.inject_fault("503", path="/api/v2/calendar-events/")

    assert get(emulator, timeout=5).status_code == 200
    assert get(emulator, "/api/v2/calendar-events/", timeout=5).status_code == 503
    assert get(emulator, "/api/v2/calendar-events/", timeout=5).status_code == 200


def test_a_stall_outlasts_the_client_timeout_but_the_request_happens(emulator):
    emulator.inject_fault("stall", seconds=0.5)

    with pytest.raises(requests.ReadTimeout):  # the client's 0.2 s, not the stall's end
        requests.post(
            emulator.base_url + "/api/v2/calendars/",
            json={
                "platform": "google_calendar",
                "oauth_client_id": "a",
                "oauth_client_secret": "b",
                "oauth_refresh_token": "c",
            },
            headers={"Authorization": "Token test-api-key"},
            timeout=0.2,
        )

    assert len(emulator.calendars) == 1  # the ambiguous case: created, answer lost
    assert emulator.requests[0].fault == "stall"


def test_random_fault_rate_is_repeatable(emulator):
    def statuses():
        emulator.fault_rate(0.5, kinds=["503", "429"], seed=42)
        return [get(emulator, timeout=5).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {429, 503, 200} == set(first)
    emulator.fault_rate(0)
    assert get(emulator, timeout=5).status_code == 200


def test_unknown_fault_kinds_are_refused(emulator):
    with pytest.raises(ValueError, match="418"):
        emulator.inject_fault("418")


# ----- the command line -----------------------------------------------------------------------
def _unbuffered() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_command_line_demo_connects_and_seeds(receiver):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "django_recall_calendar.testing", "--port", str(port)]
    command += [
        "--webhook-url",
        receiver.url,
        "--api-key",
        "k",
        "--demo",
        "--connect-delay",
        "0",
        "--kind",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_unbuffered())
    try:
        assert "127.0.0.1" in process.stdout.readline()
        created = requests.post(
            f"http://127.0.0.1:{port}/api/v2/calendars/",
            json={
                "platform": "microsoft_outlook",
                "oauth_client_id": "a",
                "oauth_client_secret": "b",
                "oauth_refresh_token": "c",
            },
            headers={"Authorization": "Token k"},
            timeout=5,
        ).json()
        deadline = time.monotonic() + 10
        events: list[str] = []
        bots = {"bot.done", "bot.fatal", "bot.recording_permission_denied"}
        while not bots <= set(events) and time.monotonic() < deadline:
            time.sleep(0.05)
            events = [json.loads(body)["event"] for body, _ in receiver.received]
        # Connected, a week of meetings, then yesterday's meetings and their bots' statuses.
        assert events[:2] == ["calendar.update", "calendar.sync_events"]
        assert bots <= set(events)
        listed = requests.get(
            f"http://127.0.0.1:{port}/api/v2/calendar-events/",
            params={"calendar_id": created["id"]},
            headers={"Authorization": "Token k"},
            timeout=5,
        ).json()
        assert len(listed["results"]) >= 15
    finally:
        process.terminate()
        process.wait(5)
