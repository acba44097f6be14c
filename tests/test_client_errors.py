"""RecallClient against answers the emulator does not give: odd error bodies, broken connections.

A tiny scripted HTTP server on 127.0.0.1 replays exactly the bytes under test (an HTML firewall
page, an empty 502, a connection dropped after the request was read), so the client is exercised
over real HTTP, as with the emulator.
"""

import json
import logging
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from django_recall_calendar.client import RecallClient
from django_recall_calendar.exceptions import (
    RecallAuthenticationError,
    RecallError,
    RecallInvalidRequestError,
    RecallNotFoundError,
    RecallServerError,
)

API_KEY = "sk-live-very-secret-key"
CLIENT_SECRET = "GOCSPX-client-secret-value"
REFRESH_TOKEN = "1//refresh-token-value"
DROP = object()  # script entry: read the request, then close the socket without answering


class ScriptedRecall:
    """Answers each request with the next scripted (status, body, headers) and records requests."""

    def __init__(self) -> None:
        self.script: deque = deque()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one_request(self) -> None:
                self.close_connection = True
                super().handle_one_request()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                entry = server.script.popleft() if server.script else (200, "{}", {})
                if entry is DROP:
                    return
                status, text, headers = entry
                payload = text.encode() if isinstance(text, str) else json.dumps(text).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def answer(self, status: int, body="", **headers: str) -> None:
        self.script.append((status, body, headers))

    def drop(self) -> None:
        self.script.append(DROP)


@pytest.fixture
def recall():
    scripted = ScriptedRecall()
    scripted.thread.start()
    yield scripted
    scripted.httpd.shutdown()
    scripted.httpd.server_close()


def make_client(recall, **options) -> RecallClient:
    options = {"max_retries": 0, "backoff_base": 0.001, "backoff_cap": 0.002, **options}
    return RecallClient(API_KEY, recall.base_url, timeout=1.0, **options)


# Error bodies -------------------------------------------------------------------------------------


def test_recall_error_envelope_is_parsed(recall):
    recall.answer(
        400,
        {
            "code": "invalid_request_data",
            "message": "Invalid request data",
            "errors": {"non_field_errors": ["Cannot schedule bot as calendar event has ended."]},
        },
    )
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        make_client(recall).schedule_bot("evt", deduplication_key="k", bot_config={})
    error = excinfo.value
    assert error.status_code == 400
    assert error.code == "invalid_request_data"
    assert error.errors == {
        "non_field_errors": ["Cannot schedule bot as calendar event has ended."]
    }
    assert error.message == (
        "Invalid request data (Cannot schedule bot as calendar event has ended.)"
    )
    assert str(error) == (
        "POST /api/v2/calendar-events/evt/bot/: [400] invalid_request_data: "
        "Invalid request data (Cannot schedule bot as calendar event has ended.)"
    )


def test_access_token_error_code_is_kept(recall):
    recall.answer(400, {"code": "bad_refresh_token", "message": "The refresh token was revoked."})
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        make_client(recall).create_access_token("cal")
    assert excinfo.value.code == "bad_refresh_token"
    assert excinfo.value.message == "The refresh token was revoked."
    assert excinfo.value.errors is None


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, RecallAuthenticationError),
        (403, RecallAuthenticationError),
        (404, RecallNotFoundError),
    ],
)
def test_drf_detail_body_is_the_message(recall, status, error_class):
    recall.answer(status, {"detail": "Invalid token."})
    with pytest.raises(error_class) as excinfo:
        make_client(recall).retrieve_calendar("cal")
    assert excinfo.value.status_code == status
    assert excinfo.value.message == "Invalid token."
    assert excinfo.value.code is None


def test_drf_field_errors_without_envelope_are_summarised(recall):
    recall.answer(400, {"meeting_url": ["This field is required."], "join_at": ["Bad date."]})
    with pytest.raises(RecallInvalidRequestError) as excinfo:
        make_client(recall).create_bot(bot_name="x")
    assert excinfo.value.errors == {
        "meeting_url": ["This field is required."],
        "join_at": ["Bad date."],
    }
    assert excinfo.value.message == "meeting_url: This field is required.; join_at: Bad date."


def test_json_list_body(recall):
    recall.answer(400, ["Something is wrong."])
    with pytest.raises(RecallInvalidRequestError, match=r"\[400\] Something is wrong\."):
        make_client(recall).update_bot("bot", bot_name="x")


def test_html_firewall_page_gives_a_readable_message(recall):
    page = "<html><head><title>403 Forbidden</title></head><body><h1>Blocked</h1>...</body></html>"
    recall.answer(403, page, **{"Content-Type": "text/html"})
    with pytest.raises(RecallAuthenticationError) as excinfo:
        make_client(recall).list_calendars().__next__()
    message = excinfo.value.message
    assert message == (
        "Recall answered 403 Forbidden with an HTML page (403 Forbidden); "
        "Recall's firewall may have refused the request."
    )
    assert "<" not in str(excinfo.value)


@pytest.mark.parametrize(("status", "reason"), [(502, "Bad Gateway"), (400, "Bad Request")])
def test_empty_body_gives_a_readable_message(recall, status, reason):
    recall.answer(status, "")
    with pytest.raises(RecallError) as excinfo:
        make_client(recall).retrieve_bot("bot")
    assert excinfo.value.message == f"Recall answered {status} {reason} with an empty body."


def test_plain_text_body_is_quoted_and_shortened(recall):
    recall.answer(500, "upstream   exploded\n" + "x" * 1000, **{"Content-Type": "text/plain"})
    with pytest.raises(RecallServerError) as excinfo:
        make_client(recall).retrieve_bot("bot")
    assert excinfo.value.message.startswith(
        "Recall answered 500 Internal Server Error: upstream exploded x"
    )
    assert len(excinfo.value.message) < 260


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (402, RecallInvalidRequestError),
        (405, RecallInvalidRequestError),
        (409, RecallServerError),
        (500, RecallServerError),
        (507, RecallServerError),
    ],
)
def test_status_maps_to_error_class(recall, status, error_class):
    recall.answer(status, {"detail": "nope"})
    with pytest.raises(error_class):
        make_client(recall).delete_bot("bot")


def test_a_success_body_that_is_not_json_is_an_error(recall):
    recall.answer(200, "<html>captive portal</html>")
    with pytest.raises(RecallError, match="not JSON"):
        make_client(recall).retrieve_calendar("cal")


# What goes on the wire ----------------------------------------------------------------------------


def test_requests_carry_token_json_body_and_no_body_on_get(recall):
    client = make_client(recall)
    recall.answer(201, {"id": "bot"})
    recall.answer(200, {"id": "bot"})
    client.create_bot(meeting_url="https://zoom.us/j/1", metadata={"event": "e1"})
    client.retrieve_bot("bot")
    post, get = recall.requests
    assert post["headers"]["Authorization"] == f"Token {API_KEY}"
    assert post["headers"]["Content-Type"] == "application/json"
    assert json.loads(post["body"]) == {
        "meeting_url": "https://zoom.us/j/1",
        "metadata": {"event": "e1"},
    }
    assert get["headers"]["Authorization"] == f"Token {API_KEY}"
    assert get["body"] == b""
    assert "Content-Type" not in get["headers"]


def test_a_next_link_to_another_host_is_not_followed(recall):
    recall.answer(
        200, {"next": "https://evil.example/api/v2/calendars/?cursor=x", "results": [{"id": 1}]}
    )
    calendars = make_client(recall).list_calendars()
    assert next(calendars) == {"id": 1}
    with pytest.raises(RecallError, match="another host"):
        next(calendars)
    assert len(recall.requests) == 1


def test_a_list_answer_without_results_is_an_error(recall):
    recall.answer(200, {"next": None})
    with pytest.raises(RecallError, match="'results'"):
        list(make_client(recall).list_bots())


def test_an_http_next_link_follows_the_scheme_of_base_url(recall):
    """Recall behind a proxy may answer http:// links; the client keeps its own scheme and host."""
    host = recall.base_url.removeprefix("http://")
    recall.answer(
        200, {"next": f"HTTP://{host}/api/v1/bot/?cursor=abc&status=done", "results": [1]}
    )
    recall.answer(200, {"next": None, "results": [2]})
    assert list(make_client(recall).list_bots(status="done")) == [1, 2]
    assert [r["path"] for r in recall.requests] == [
        "/api/v1/bot/?status=done",
        "/api/v1/bot/?cursor=abc&status=done",
    ]


# Ambiguous failures -------------------------------------------------------------------------------


def test_create_calendar_is_repeated_under_its_key_after_the_connection_drops(recall):
    recall.drop()
    recall.answer(201, {"id": "cal"})
    client = make_client(recall, max_retries=3)
    created = client.create_calendar(
        platform="google_calendar",
        oauth_client_id="id",
        oauth_client_secret=CLIENT_SECRET,
        oauth_refresh_token=REFRESH_TOKEN,
    )
    assert created == {"id": "cal"}
    keys = [r["headers"]["Idempotency-Key"] for r in recall.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_create_bot_is_repeated_under_its_key_after_a_502(recall):
    recall.answer(502, "")
    recall.answer(201, {"id": "bot"})
    assert make_client(recall, max_retries=3).create_bot(meeting_url="https://zoom.us/j/1")
    keys = [r["headers"]["Idempotency-Key"] for r in recall.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_get_is_repeated_after_the_connection_drops(recall):
    recall.drop()
    recall.answer(200, {"id": "cal"})
    assert make_client(recall, max_retries=1).retrieve_calendar("cal") == {"id": "cal"}
    assert len(recall.requests) == 2


def test_delete_that_finds_nothing_on_a_repeat_has_succeeded(recall):
    """The first DELETE may have been applied before its 502: a 404 to the repeat means done."""
    recall.answer(502, "")
    recall.answer(404, {"detail": "Not found."})
    assert make_client(recall, max_retries=1).delete_calendar("cal") is None
    assert [r["method"] for r in recall.requests] == ["DELETE", "DELETE"]


def test_delete_of_a_missing_object_without_a_repeat_is_not_found(recall):
    recall.answer(404, {"detail": "Not found."})
    with pytest.raises(RecallNotFoundError):
        make_client(recall, max_retries=1).delete_calendar("cal")


# Secrets ------------------------------------------------------------------------------------------


def test_secrets_echoed_by_recall_never_reach_messages_or_logs(recall, caplog):
    """Even if Recall quoted the request back in its error, no secret leaves the client."""
    echo = {
        "code": "invalid_request_data",
        "message": f"Bad refresh token {REFRESH_TOKEN} for key {API_KEY}",
        "errors": {"oauth_client_secret": [f"{CLIENT_SECRET} is wrong"]},
    }
    caplog.set_level(logging.DEBUG)
    client = make_client(recall, max_retries=2)
    recall.answer(503, json.dumps(echo))
    recall.answer(400, json.dumps(echo))
    recall.drop()
    recall.drop()
    recall.drop()
    texts = [repr(client), str(client)]
    for call in (
        lambda: client.create_calendar(
            platform="google_calendar",
            oauth_client_id="id",
            oauth_client_secret=CLIENT_SECRET,
            oauth_refresh_token=REFRESH_TOKEN,
        ),
        lambda: client.update_calendar("cal", oauth_refresh_token=REFRESH_TOKEN),
    ):
        with pytest.raises(RecallError) as excinfo:
            call()
        error = excinfo.value
        texts += [str(error), repr(error), error.message, json.dumps(error.errors)]
    texts += [record.getMessage() for record in caplog.records]
    assert "[redacted]" in texts[2]
    assert any("retry" in text for text in texts)
    for secret in (API_KEY, CLIENT_SECRET, REFRESH_TOKEN):
        assert not [text for text in texts if secret in text], secret


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_an_error_not_followed(recall, status):
    """A redirect (an http:// BASE_URL behind an https-only front, a proxy) is reported, not
    followed: following turned the POST into a GET, and the list answered passed for the calendar
    just created, without its id."""
    recall.answer(status, "", Location=f"{recall.base_url}/api/v2/calendars/")
    recall.answer(200, {"next": None, "previous": None, "results": []})

    with pytest.raises(RecallError, match=str(status)) as caught:
        make_client(recall).create_calendar(
            platform="google_calendar",
            oauth_client_id="id",
            oauth_client_secret=CLIENT_SECRET,
            oauth_refresh_token=REFRESH_TOKEN,
        )

    assert caught.value.status_code == status
    assert [r["method"] for r in recall.requests] == ["POST"]
    assert CLIENT_SECRET not in str(caught.value)
