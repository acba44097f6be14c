"""Fields derived from a calendar event's provider payload (``raw``), for Google and Microsoft
alike.

Recall passes the provider's own event object through untouched: a Google Calendar ``events``
resource or a Microsoft Graph ``event``. Deriving the few fields the app filters on (title,
organizer, attendees and their responses, cancelled, series, all-day, private, not-a-meeting) into
columns lets the admin,
the REST API and the recording policy query them without parsing JSON per row, and in one vocabulary
for both providers.

Every reader tolerates missing keys, nulls and wrong types: payloads are partial when a host hides
its guest list, and a malformed payload must never stop a sync.
"""

from __future__ import annotations

from typing import Any

#: Recall's ``platform`` names of the two providers.
GOOGLE_CALENDAR = "google_calendar"
MICROSOFT_OUTLOOK = "microsoft_outlook"

#: Attendee responses, normalised across providers.
ACCEPTED = "accepted"
DECLINED = "declined"
TENTATIVE = "tentative"
NEEDS_ACTION = "needs_action"

GOOGLE_RESPONSES = {
    "accepted": ACCEPTED,
    "declined": DECLINED,
    "tentative": TENTATIVE,
    "needsAction": NEEDS_ACTION,
}
MICROSOFT_RESPONSES = {
    "accepted": ACCEPTED,
    "organizer": ACCEPTED,
    "declined": DECLINED,
    "tentativelyAccepted": TENTATIVE,
    "none": NEEDS_ACTION,
    "notResponded": NEEDS_ACTION,
}

#: Sensitivities, normalised across providers (Google ``visibility``, Microsoft ``sensitivity``);
#: "" for everything else (default, public, normal, personal).
PRIVATE = "private"
CONFIDENTIAL = "confidential"
SENSITIVITIES = {"private": PRIVATE, "confidential": CONFIDENTIAL}

#: Google's ``eventType`` values of time blocks that are not meetings, by their normalised kind;
#: "" (a meeting) for ``default`` and any other value.
GOOGLE_KINDS = {
    "focusTime": "focus_time",
    "outOfOffice": "out_of_office",
    "workingLocation": "working_location",
}

#: The CalendarEvent columns :func:`derive_fields` fills.
DERIVED_FIELDS = (
    "title",
    "organizer_email",
    "attendees",
    "is_organizer",
    "is_cancelled",
    "recurring_event_id",
    "is_all_day",
    "sensitivity",
    "kind",
)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _email(value: Any) -> str:
    return _text(value).lower()


def _attendee(email: str, response: Any, responses: dict[str, str]) -> dict[str, str]:
    return {"email": email, "response": responses.get(_text(response), NEEDS_ACTION)}


def _google(raw: dict, owner: str) -> dict[str, Any]:
    organizer = _dict(raw.get("organizer"))
    organizer_email = _email(organizer.get("email"))
    entries = _dicts(raw.get("attendees"))
    attendees = [
        _attendee(email, a.get("responseStatus"), GOOGLE_RESPONSES)
        for a in entries
        if (email := _email(a.get("email")))
    ]
    organizes = (
        organizer.get("self") is True
        or any(a.get("self") is True and a.get("organizer") is True for a in entries)
        or bool(owner and organizer_email == owner)
    )
    start = _dict(raw.get("start"))
    return {
        "title": _text(raw.get("summary")),
        "organizer_email": organizer_email,
        "attendees": attendees,
        "is_organizer": organizes,
        "is_cancelled": raw.get("status") == "cancelled",
        "recurring_event_id": _text(raw.get("recurringEventId")),
        "is_all_day": bool(start.get("date")) and not start.get("dateTime"),
        "sensitivity": SENSITIVITIES.get(_text(raw.get("visibility")), ""),
        "kind": GOOGLE_KINDS.get(_text(raw.get("eventType")), ""),
    }


def _microsoft(raw: dict, owner: str) -> dict[str, Any]:
    organizer_email = _email(_dict(_dict(raw.get("organizer")).get("emailAddress")).get("address"))
    attendees = []
    for entry in _dicts(raw.get("attendees")):
        email = _email(_dict(entry.get("emailAddress")).get("address"))
        if email:
            response = _dict(entry.get("status")).get("response")
            attendees.append(_attendee(email, response, MICROSOFT_RESPONSES))
    is_organizer = raw.get("isOrganizer")
    if not isinstance(is_organizer, bool):
        is_organizer = bool(owner and organizer_email == owner)
    return {
        "title": _text(raw.get("subject")),
        "organizer_email": organizer_email,
        "attendees": attendees,
        "is_organizer": is_organizer,
        "is_cancelled": raw.get("isCancelled") is True,
        "recurring_event_id": _text(raw.get("seriesMasterId")),
        "is_all_day": raw.get("isAllDay") is True,
        "sensitivity": SENSITIVITIES.get(_text(raw.get("sensitivity")), ""),
        "kind": "",
    }


def is_microsoft(platform: str | None, raw: dict) -> bool:
    """Whether ``raw`` is a Graph event: by Recall's ``platform``, else by the payload's keys."""
    if platform in (GOOGLE_CALENDAR, MICROSOFT_OUTLOOK):
        return platform == MICROSOFT_OUTLOOK
    return "subject" in raw or "@odata.etag" in raw


def derive_fields(raw: Any, *, platform: str | None, owner_email: str = "") -> dict[str, Any]:
    """The values of :data:`DERIVED_FIELDS` for one event.

    ``owner_email`` is the calendar's address; it decides ``is_organizer`` when the payload does not
    say so itself. Emails are lower-cased so they compare across providers.
    """
    raw = _dict(raw)
    owner = _email(owner_email)
    return _microsoft(raw, owner) if is_microsoft(platform, raw) else _google(raw, owner)
