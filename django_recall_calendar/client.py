"""RecallClient: the only code that speaks HTTP to Recall (Calendar V2 and the v1 Bot API).

One responsibility: send a request, survive Recall's failure modes (retries), and turn failures into
``RecallError`` subclasses. Turning Recall objects into rows is ``sync.py``'s job.

Every call may be repeated after a failure, also an *ambiguous* one (a read timeout, a connection
dropped after the request was sent, a 502/504 from a gateway that may have forwarded it), because
a repeat never acts twice:

- GET: reads change nothing.
- POST and PATCH carry an ``Idempotency-Key`` (the caller's, or one made per call), the same on
  every retry of that call: Recall answers a repeat within an hour with the first answer instead
  of acting again, and with 409 (retried) while the first is still being handled. So a create
  (calendar, bot) retried after a timeout still makes one object.
- DELETE of a calendar or bot: a repeat finds nothing left to delete; a 404 answered to a
  *repeat* counts as success.
- DELETE ``/api/v2/calendar-events/{id}/bot/``: idempotent at Recall (200 while the event
  exists), so a 404, even to a repeat, means the event is gone.

So a 500 is retried like a 502 or a timeout: Recall's failure is often passing (a deploy, a
database failover), and a repeat that Recall had applied before failing acts no second time.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID, uuid4

import requests
from django.views.decorators.debug import sensitive_variables
from urllib3.exceptions import ConnectTimeoutError

from . import __version__, budget, conf
from .exceptions import (
    RecallAuthenticationError,
    RecallConnectionError,
    RecallError,
    RecallInvalidRequestError,
    RecallNotFoundError,
    RecallRateLimitError,
    RecallServerError,
)
from .retry import MAYBE_APPLIED_STATUSES, RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

# Calendar fields that are secrets: never in a log line or exception message, and stripped from the
# calendar objects Recall echoes them in before anything stores them (strip_secrets).
SECRET_FIELDS = ("oauth_client_secret", "oauth_refresh_token")
REDACTED = "[redacted]"

CALENDARS = "/api/v2/calendars/"
CALENDAR_EVENTS = "/api/v2/calendar-events/"
BOTS = "/api/v1/bot/"

# Methods that carry an Idempotency-Key, so that their retries never act twice.
IDEMPOTENCY_KEY_METHODS = frozenset({"POST", "PATCH"})

# The failures after which the request may have been sent and applied.
AMBIGUOUS_FAILURES = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)

Json = Any


class RecallClient:
    """A client for one Recall region and API key; one ``requests.Session`` reuses connections."""

    @sensitive_variables("api_key")
    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = conf.DEFAULTS["TIMEOUT"],
        max_retries: int = conf.DEFAULTS["MAX_RETRIES"],
        retry_after_cap: float = conf.DEFAULTS["RETRY_AFTER_CAP"],
        backoff_base: float = conf.DEFAULTS["BACKOFF_BASE"],
        backoff_cap: float = conf.DEFAULTS["BACKOFF_CAP"],
    ) -> None:
        if not api_key:
            raise ValueError("RecallClient needs an API key.")
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"RecallClient base_url must be an http(s) URL, not {base_url!r}.")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds.")
        self.base_url = str(base_url).rstrip("/")
        self.timeout = timeout
        self.retry = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            retry_after_cap=retry_after_cap,
        )
        self._api_key = api_key
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Token {api_key}",
                "Accept": "application/json",
                "User-Agent": f"django-recall-calendar/{__version__}",
            }
        )

    @classmethod
    def from_settings(cls) -> RecallClient:
        """A client configured from ``settings.RECALL_CALENDAR``, read now (override-safe)."""
        return cls(
            api_key=conf.get("API_KEY"),
            base_url=conf.base_url(),
            timeout=float(conf.get("TIMEOUT")),
            max_retries=int(conf.get("MAX_RETRIES")),
            retry_after_cap=float(conf.get("RETRY_AFTER_CAP")),
            backoff_base=float(conf.get("BACKOFF_BASE")),
            backoff_cap=float(conf.get("BACKOFF_CAP")),
        )

    def __repr__(self) -> str:
        return f"<RecallClient base_url={self.base_url!r}>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RecallClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Calendars -------------------------------------------------------------------------------

    @sensitive_variables("oauth_client_secret", "oauth_refresh_token", "body")
    def create_calendar(
        self,
        *,
        platform: str,
        oauth_client_id: str,
        oauth_client_secret: str,
        oauth_refresh_token: str,
        oauth_email: str | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        """Connect a calendar (201); retried safely under one ``Idempotency-Key`` (module doc)."""
        body = {
            "platform": platform,
            "oauth_client_id": oauth_client_id,
            "oauth_client_secret": oauth_client_secret,
            "oauth_refresh_token": oauth_refresh_token,
        }
        if oauth_email is not None:
            body["oauth_email"] = oauth_email
        return self._request("POST", CALENDARS, body=body, idempotency_key=idempotency_key)

    def list_calendars(self, **filters: Any) -> Iterator[Json]:
        """Calendars, lazily across pages. Filters: created_at__gte, email, platform, status."""
        return itertools.chain.from_iterable(self._pages(CALENDARS, filters))

    def retrieve_calendar(self, calendar_id: str | UUID) -> Json:
        return self._request("GET", _path(CALENDARS, calendar_id))

    @sensitive_variables("fields")
    def update_calendar(
        self, calendar_id: str | UUID, *, idempotency_key: str | None = None, **fields: Any
    ) -> Json:
        """PATCH; an empty body asks Recall to retry the connection of a disconnected calendar."""
        return self._request(
            "PATCH", _path(CALENDARS, calendar_id), body=fields, idempotency_key=idempotency_key
        )

    def delete_calendar(self, calendar_id: str | UUID) -> None:
        self._request("DELETE", _path(CALENDARS, calendar_id), deletes_target=True)

    def create_access_token(self, calendar_id: str | UUID) -> Json:
        """The provider OAuth access token Recall maintains: ``{"token", "expires_at"}``."""
        return self._request("POST", _path(CALENDARS, calendar_id, "access-token"))

    # Calendar events ---------------------------------------------------------------------------

    def iter_calendar_event_pages(self, **filters: Any) -> Pages:
        """Pages of events, lazily. Filters: calendar_id, ical_uid, is_deleted, start_time,
        start_time__gte, start_time__lte, updated_at__gte (datetimes or ISO strings)."""
        return self._pages(CALENDAR_EVENTS, filters)

    def list_calendar_events(self, **filters: Any) -> Iterator[Json]:
        """Events one by one, lazily across pages (filters as ``iter_calendar_event_pages``)."""
        return itertools.chain.from_iterable(self._pages(CALENDAR_EVENTS, filters))

    def retrieve_calendar_event(self, event_id: str | UUID) -> Json:
        return self._request("GET", _path(CALENDAR_EVENTS, event_id))

    def schedule_bot(
        self,
        event_id: str | UUID,
        *,
        deduplication_key: str,
        bot_config: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> Json:
        """Add or replace the event's Recall-managed bot; returns the updated event."""
        body = {"deduplication_key": deduplication_key, "bot_config": dict(bot_config)}
        path = _path(CALENDAR_EVENTS, event_id, "bot")
        return self._request("POST", path, body=body, idempotency_key=idempotency_key)

    def unschedule_bot(self, event_id: str | UUID) -> Json:
        """Remove the event's managed bot (idempotent at Recall); returns the updated event."""
        return self._request("DELETE", _path(CALENDAR_EVENTS, event_id, "bot"))

    # Bots (v1, self-managed scheduling) -------------------------------------------------------

    def create_bot(self, *, idempotency_key: str | None = None, **fields: Any) -> Json:
        """Create a bot (needs ``meeting_url``); retried safely under one ``Idempotency-Key``."""
        return self._request("POST", BOTS, body=fields, idempotency_key=idempotency_key)

    def retrieve_bot(self, bot_id: str | UUID) -> Json:
        return self._request("GET", _path(BOTS, bot_id))

    def update_bot(
        self, bot_id: str | UUID, *, idempotency_key: str | None = None, **fields: Any
    ) -> Json:
        return self._request(
            "PATCH", _path(BOTS, bot_id), body=fields, idempotency_key=idempotency_key
        )

    def delete_bot(self, bot_id: str | UUID) -> None:
        self._request("DELETE", _path(BOTS, bot_id), deletes_target=True)

    def list_bots(self, **filters: Any) -> Iterator[Json]:
        """Bots, lazily across pages. Filters: join_at_after, join_at_before, meeting_url, platform,
        status, ``metadata__<key>=<value>``."""
        return itertools.chain.from_iterable(self._pages(BOTS, filters))

    # HTTP ----------------------------------------------------------------------------------------

    def _pages(self, path: str, filters: Mapping[str, Any]) -> Pages:
        """Validate filters now, fetch pages only as the caller iterates."""
        return Pages(self, self.base_url + path, _query(filters))

    def _follow_pages(
        self, url: str, params: dict[str, Any] | None, listing: Pages
    ) -> Iterator[list[Json]]:
        next_url: str | None = url
        while next_url:
            page = self._request("GET", next_url, params=params, listing=listing)
            params = None  # ``next`` already carries the cursor and the filters
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise RecallError(
                    "Recall answered a list request without a 'results' list.",
                    method="GET",
                    path=urlsplit(next_url).path,
                )
            yield page["results"]
            next_url = self._next_url(page.get("next"))

    def _next_url(self, value: object) -> str | None:
        """``next`` as given, but never to another host: that host would receive our API key.

        The scheme follows ``base_url``: Recall behind a local proxy may answer ``http://`` links.
        """
        if not value:
            return None
        link = urlsplit(str(value))
        base = urlsplit(self.base_url)
        if link.netloc != base.netloc:
            raise RecallError(
                f"Recall's 'next' link points to another host ({link.netloc!r}); not following it."
            )
        return urlunsplit((base.scheme, *link[1:]))

    @sensitive_variables()  # the body, the headers and every frame below hold secrets
    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        deletes_target: bool = False,
        listing: Pages | None = None,
    ) -> Json:
        """One call with retries, all under one ``Idempotency-Key`` for a POST or PATCH (the
        caller's, else a new one); ``deletes_target`` marks a DELETE whose 404 to a repeat means
        it was done (see the module docstring); the answer to a ``listing``'s first page dates
        it."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        path = urlsplit(url).path  # logs and errors never show the query string
        data = None if body is None else json.dumps(body, default=_wire_value)
        headers = {} if data is None else {"Content-Type": "application/json"}
        if method in IDEMPOTENCY_KEY_METHODS:
            headers["Idempotency-Key"] = idempotency_key or str(uuid4())
        maybe_applied = False
        for attempt in range(self.retry.max_retries + 1):
            last = attempt == self.retry.max_retries
            budget.take(method, path)
            try:
                # Never follow a redirect: it turns a POST into a GET, or (307/308) re-sends the
                # body with its OAuth secrets to whatever host the Location names.
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except AMBIGUOUS_FAILURES as exc:
                if last:
                    raise RecallConnectionError(
                        _redact(
                            f"Could not reach Recall: {_describe_exception(exc)}",
                            self._secrets(body),
                        ),
                        method=method,
                        path=path,
                    ) from exc
                maybe_applied = maybe_applied or not _certainly_not_sent(exc)
                self._wait(method, path, type(exc).__name__, attempt, self.retry.backoff(attempt))
                continue

            status = response.status_code
            logger.debug("Recall %s %s -> %s", method, path, status)
            if status < 300:
                if listing is not None and listing.first_answered_at is None:
                    listing.first_answered_at = _response_date(response)
                return _success_body(response, method, path)
            if status == 404 and deletes_target and maybe_applied:
                return None  # an earlier attempt already deleted it
            if status == 429:
                budget.throttled(method, path)
            if status not in RETRYABLE_STATUSES or last:
                raise _error_from_response(response, method, path, self._secrets(body))
            maybe_applied = maybe_applied or status in MAYBE_APPLIED_STATUSES
            delay = self.retry.delay(attempt, response.headers.get("Retry-After"))
            response.close()
            self._wait(method, path, str(status), attempt, delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _wait(self, method: str, path: str, failure: str, attempt: int, delay: float) -> None:
        logger.warning(
            "Recall %s %s failed (%s); retry %d of %d in %.2fs",
            method,
            path,
            failure,
            attempt + 1,
            self.retry.max_retries,
            delay,
        )
        time.sleep(delay)

    def _secrets(self, body: Any) -> list[str]:
        """The values to scrub from any message about this request."""
        values = [self._api_key]
        if isinstance(body, Mapping):
            values += [str(body[field]) for field in SECRET_FIELDS if body.get(field)]
        return values


class Pages:
    """A listing's pages, each fetched as the caller iterates.

    ``first_answered_at`` is Recall's clock (its ``Date`` header) when it answered the first page:
    a listing in no order may miss a change made after then behind its cursor, so a sync's
    watermark must not pass it (see :class:`.sync.PageOrder`).
    """

    def __init__(self, client: RecallClient, url: str, params: dict[str, Any] | None) -> None:
        self.first_answered_at: datetime | None = None
        self._pages = client._follow_pages(url, params, self)

    def __iter__(self) -> Pages:
        return self

    def __next__(self) -> list[Json]:
        return next(self._pages)


def _path(collection: str, object_id: str | UUID, action: str | None = None) -> str:
    """``/collection/{id}/[action/]`` with the id quoted, so an id can never change the path."""
    text = str(object_id).strip() if object_id is not None else ""
    if not text:
        raise ValueError("An object id is required.")
    path = f"{collection}{quote(text, safe='')}/"
    return f"{path}{action}/" if action else path


def _wire_value(value: Any) -> Any:
    """A JSON/query representation of values Recall expects as text (ISO 8601 datetimes in UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"Naive datetime {value.isoformat()!r}: pass an aware datetime.")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"Cannot send a {type(value).__name__} to Recall.")


def _query(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Recall's query parameters: None drops a filter, booleans are ``true``/``false``."""

    def one(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return value
        return _wire_value(value)

    params: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        params[key] = (
            [one(item) for item in value] if isinstance(value, list | tuple) else one(value)
        )
    return params


def _certainly_not_sent(exc: Exception) -> bool:
    """True when the TCP connection was never made (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a subclass


def _describe_exception(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer in time ({type(exc).__name__})."
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {reason or exc}"


def _response_date(response: requests.Response) -> datetime | None:
    """Recall's clock when it answered (its ``Date`` header, to the second), if it says."""
    try:
        answered = parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: a year past C long
        return None
    return answered if answered.tzinfo else answered.replace(tzinfo=UTC)  # "-0000": UTC too


def _success_body(response: requests.Response, method: str, path: str) -> Json:
    if response.status_code == 204 or not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        raise RecallError(
            f"Recall answered {response.status_code} with a body that is not JSON.",
            status_code=response.status_code,
            method=method,
            path=path,
        ) from None
    # In UTF-8 JSON a NUL character can only be written \u0000, and any other encoding has zero
    # bytes: one search of the body in C spares the walk for every answer without one.
    if b"\\u0000" in response.content or b"\x00" in response.content:
        body = without_nul(body)
    return body


def without_nul(value: Any) -> Any:
    """``value`` without NUL characters in any string or key: PostgreSQL's text and jsonb refuse
    them, and one in a provider's payload would fail its sync page on every retry."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def strip_secrets(obj: Any) -> dict:
    """A Recall object fit to store: without the OAuth client secret and refresh token (a copy
    when it holds either; as it is otherwise, which every event's provider payload is)."""
    if not isinstance(obj, dict):
        return {}
    if obj.keys().isdisjoint(SECRET_FIELDS):
        return obj
    return {key: value for key, value in obj.items() if key not in SECRET_FIELDS}


def _error_class(status: int) -> type[RecallError]:
    if status in (401, 403):
        return RecallAuthenticationError
    if status == 404:
        return RecallNotFoundError
    if status == 429:
        return RecallRateLimitError
    if status >= 500 or status in (409, 507):
        return RecallServerError
    if status >= 400:
        return RecallInvalidRequestError
    return RecallError


def _error_from_response(
    response: requests.Response, method: str, path: str, secrets: list[str]
) -> RecallError:
    code, message, errors = _parse_error_body(response)
    return _error_class(response.status_code)(
        _redact(message, secrets),
        status_code=response.status_code,
        code=_redact(code, secrets),
        errors=_redact(errors, secrets),
        method=method,
        path=path,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _parse_error_body(response: requests.Response) -> tuple[str | None, str, Any]:
    """(code, message, errors) from Recall's envelope, DRF's ``{"detail"}``, HTML or plain text."""
    status = f"{response.status_code} {response.reason or ''}".strip()
    text = response.text.strip()
    if not text:
        return None, f"Recall answered {status} with an empty body.", None
    try:
        body = json.loads(text)
    except ValueError:
        return None, _describe_text(text, status, response.status_code), None
    if isinstance(body, dict):
        code = body.get("code")
        errors = body.get("errors")
        message = body.get("message") or body.get("detail")
        if errors is None and message is None:
            errors = body  # a DRF validation body: {"field": ["message", ...]}
        summary = _summarise(errors)
        text_message = str(message) if message else summary or f"Recall answered {status}."
        if summary and summary not in text_message:
            text_message = f"{text_message} ({summary})"
        return (str(code) if code else None), text_message, errors
    return None, _summarise(body) or f"Recall answered {status}.", body


def _describe_text(text: str, status: str, status_code: int) -> str:
    """A readable message for a non-JSON body, such as the HTML page of Recall's firewall (403)."""
    if text.startswith("<") or "<html" in text[:500].lower():
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        label = f" ({' '.join(title.group(1).split())[:120]})" if title else ""
        hint = "; Recall's firewall may have refused the request" if status_code == 403 else ""
        return f"Recall answered {status} with an HTML page{label}{hint}."
    return f"Recall answered {status}: {' '.join(text.split())[:200]}"


def _summarise(errors: Any) -> str:
    """``field: message`` pairs of a DRF-style error structure, on one line."""
    if not errors:
        return ""
    if isinstance(errors, dict):
        parts = []
        for field, value in errors.items():
            text = _summarise(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)[:500]
    if isinstance(errors, list | tuple):
        return ", ".join(_summarise(item) for item in errors)[:500]
    return str(errors)[:500]


def _redact(value: Any, secrets: list[str]) -> Any:
    """``value`` (text or a JSON structure) with every secret replaced by a marker."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redact(key, secrets): _redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, secrets) for item in value]
    return value
