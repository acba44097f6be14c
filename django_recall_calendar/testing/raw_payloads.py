"""Provider payloads for an event's ``raw``: a Google Calendar event or a Microsoft Graph event.

Shapes follow the JSON Schemas Recall publishes for ``raw`` so code that reads titles, attendees or
series ids from ``raw`` is exercised against realistic data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_GRAPH_NO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class RawInputs:
    """What a test may say about an event beyond Recall's own fields."""

    title: str = "Meeting"
    organizer: str = "organizer@example.com"
    attendees: list[Any] = field(default_factory=list)
    self_email: str | None = None
    series_id: str | None = None
    description: str = ""
    #: Provider keys set over the rendered payload, e.g. ``{"visibility": "private"}`` (Google)
    #: or ``{"sensitivity": "private"}`` (Microsoft).
    raw_extra: dict[str, Any] = field(default_factory=dict)


def _attendee(entry: Any) -> dict[str, Any]:
    """An attendee given as an email or as ``{"email", "name", "response"}``."""
    if isinstance(entry, str):
        return {"email": entry, "name": entry.split("@")[0].replace(".", " ").title()}
    return dict(entry)


def _tag(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def google_event(event: dict[str, Any], inputs: RawInputs, start: datetime, end: datetime) -> dict:
    """A Google Calendar ``events`` resource for the event."""
    created, updated = event["created_at"], event["updated_at"]
    attendees = []
    for entry in map(_attendee, inputs.attendees):
        item: dict[str, Any] = {
            "email": entry["email"],
            "responseStatus": entry.get("response", "needsAction"),
        }
        if entry.get("name"):
            item["displayName"] = entry["name"]
        if entry["email"] == inputs.organizer:
            item["organizer"] = True
        if entry["email"] == inputs.self_email:
            item["self"] = True
        attendees.append(item)
    raw: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"{_tag(event["id"], updated)}"',
        "id": event["platform_id"],
        "status": "cancelled" if event["is_deleted"] else "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event['platform_id']}",
        "created": created,
        "updated": updated,
        "summary": inputs.title,
        "creator": {"email": inputs.organizer},
        "organizer": {"email": inputs.organizer},
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": end.isoformat(), "timeZone": "UTC"},
        "iCalUID": event["ical_uid"],
        "sequence": 0,
        "attendees": attendees,
        "eventType": "default",
        "reminders": {"useDefault": True},
    }
    if event["meeting_platform"] == "google_meet":
        raw["hangoutLink"] = event["meeting_url"]
    if inputs.series_id:
        raw["recurringEventId"] = inputs.series_id
        raw["originalStartTime"] = dict(raw["start"])
    return raw


def _graph_time(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _graph_address(email: str, name: str | None = None) -> dict[str, str]:
    return {"name": name or email.split("@")[0].replace(".", " ").title(), "address": email}


def microsoft_event(
    event: dict[str, Any], inputs: RawInputs, start: datetime, end: datetime
) -> dict:
    """A Microsoft Graph ``event`` resource for the event."""
    url = event["meeting_url"]
    teams = event["meeting_platform"] == "microsoft_teams"
    body = inputs.description or (f"Join: {url}" if url else "")
    attendees = []
    for entry in map(_attendee, inputs.attendees):
        attendees.append(
            {
                "type": "required",
                "status": {"response": entry.get("response", "none"), "time": _GRAPH_NO_TIME},
                "emailAddress": _graph_address(entry["email"], entry.get("name")),
            }
        )
    is_organizer = inputs.self_email is not None and inputs.self_email == inputs.organizer
    return {
        "@odata.etag": f'W/"{_tag(event["id"], event["updated_at"])}"',
        "@odata.type": "#microsoft.graph.event",
        "id": event["platform_id"],
        "uid": event["ical_uid"],
        "iCalUId": event["ical_uid"],
        "changeKey": _tag("change", event["id"], event["updated_at"]),
        "createdDateTime": event["created_at"],
        "lastModifiedDateTime": event["updated_at"],
        "subject": inputs.title,
        "bodyPreview": body[:255],
        "body": {"contentType": "html", "content": f"<html><body>{body}</body></html>"},
        "start": _graph_time(start),
        "end": _graph_time(end),
        "originalStartTimeZone": "UTC",
        "originalEndTimeZone": "UTC",
        "type": "occurrence" if inputs.series_id else "singleInstance",
        "seriesMasterId": inputs.series_id,
        "occurrenceId": None,
        "recurrence": None,
        "showAs": "busy",
        "webLink": f"https://outlook.office365.com/owa/?itemid={event['platform_id']}",
        "isAllDay": False,
        "isCancelled": event["is_deleted"],
        "isDraft": False,
        "isOrganizer": is_organizer,
        "importance": "normal",
        "sensitivity": "normal",
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "hideAttendees": False,
        "hasAttachments": False,
        "responseRequested": True,
        "responseStatus": {
            "response": "organizer" if is_organizer else "accepted",
            "time": _GRAPH_NO_TIME,
        },
        "transactionId": _tag("tx", event["id"]),
        "organizer": {"emailAddress": _graph_address(inputs.organizer)},
        "attendees": attendees,
        "location": {"displayName": "Microsoft Teams Meeting" if teams else ""},
        "locations": [],
        "categories": [],
        "isOnlineMeeting": teams,
        "onlineMeetingProvider": "teamsForBusiness" if teams else "unknown",
        "onlineMeeting": {"joinUrl": url} if teams else None,
        "onlineMeetingUrl": None,
    }


def build_raw(event: dict[str, Any], inputs: RawInputs, start: datetime, end: datetime) -> dict:
    """The provider payload matching the event's calendar platform."""
    if event["platform"] == "microsoft_outlook":
        raw = microsoft_event(event, inputs, start, end)
    else:
        raw = google_event(event, inputs, start, end)
    return {**raw, **inputs.raw_extra}
