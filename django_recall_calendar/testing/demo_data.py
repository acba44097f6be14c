"""A realistic working week of meetings for a newly connected demo calendar."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

COLLEAGUES = ["maria.garcia", "tom.becker", "li.wei", "sam.okafor"]
EXTERNALS = ["jane.doe@client-corp.com", "raj.patel@partner.io", "anna.schmidt@vendor.de"]


def _links(rng: random.Random) -> dict[str, str]:
    return {
        "zoom": f"https://zoom.us/j/{rng.randint(10**9, 10**10 - 1)}",
        "meet": "https://meet.google.com/"
        + "-".join("".join(rng.choices("abcdefghijkmnopqrstuvwxyz", k=n)) for n in (3, 4, 3)),
        "teams": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=24))
        + "%40thread.v2/0",
    }


def working_week(
    owner: str, *, today: datetime | None = None, seed: int = 7
) -> list[dict[str, Any]]:
    """Field sets for ``add_event``: Monday to Friday from the next weekday, in UTC office hours."""
    rng = random.Random(f"{owner}-{seed}")
    domain = owner.split("@")[-1]
    team = [f"{name}@{domain}" for name in COLLEAGUES]
    day = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    workdays: list[datetime] = []
    while len(workdays) < 5:  # the next five weekdays, over a weekend if one comes first
        day += timedelta(days=1)
        if day.weekday() < 5:
            workdays.append(day)
    standup_link = _links(rng)["meet"]
    series = f"standup{rng.randint(10**6, 10**7)}"
    events: list[dict[str, Any]] = []
    for offset, date in enumerate(workdays):
        links = _links(rng)

        def at(hour: int, minute: int = 0, date: datetime = date) -> datetime:
            return date + timedelta(hours=hour, minutes=minute)

        events.append(
            {
                "title": "Daily stand-up",
                "start_time": at(9),
                "duration": 15,
                "meeting_url": standup_link,
                "attendees": [owner, *team],
                "organizer": team[0],
                "series_id": series,
            }
        )
        kind = offset % 3
        if kind == 0:
            events.append(
                {
                    "title": "Customer call: quarterly review",
                    "start_time": at(14),
                    "duration": 60,
                    "meeting_url": links["zoom"],
                    "attendees": [owner, team[1], *rng.sample(EXTERNALS, 2)],
                    "organizer": owner,
                }
            )
        elif kind == 1:
            events.append(
                {
                    "title": "Partner sync",
                    "start_time": at(15, 30),
                    "duration": 30,
                    "meeting_url": links["teams"],
                    "attendees": [owner, rng.choice(EXTERNALS)],
                    "organizer": rng.choice(EXTERNALS),
                }
            )
        else:
            events.append(
                {
                    "title": f"1:1 with {team[2].split('.')[0].title()}",
                    "start_time": at(11),
                    "duration": 30,
                    "meeting_url": links["meet"],
                    "attendees": [owner, team[2]],
                    "organizer": owner,
                }
            )
        events.append(
            {
                "title": "Lunch" if offset % 2 else "Focus time",
                "start_time": at(12, 30),
                "duration": 60,
                "meeting_url": None,
                "attendees": [owner],
                "organizer": owner,
            }
        )
    return events


def finished_meetings(
    owner: str, *, today: datetime | None = None, seed: int = 7
) -> list[dict[str, Any]]:
    """Yesterday's meetings, each with a bot and the moves it made (for ``move_bot``): one
    recorded, one that could not join, one the host would not let record."""
    rng = random.Random(f"{owner}-{seed}-past")
    domain = owner.split("@")[-1]
    day = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    day -= timedelta(days=1)
    links = _links(rng)
    colleague = f"{COLLEAGUES[1]}@{domain}"
    return [
        {
            "title": "Design review",
            "start_time": day + timedelta(hours=10),
            "duration": 45,
            "meeting_url": links["meet"],
            "attendees": [owner, colleague],
            "organizer": owner,
            "bot_moves": [("done", None)],
        },
        {
            "title": "Customer onboarding",
            "start_time": day + timedelta(hours=13),
            "duration": 30,
            "meeting_url": links["zoom"],
            "attendees": [owner, EXTERNALS[0]],
            "organizer": EXTERNALS[0],
            "bot_moves": [("joining_call", None), ("fatal", "meeting_not_found")],
        },
        {
            "title": "Vendor negotiation",
            "start_time": day + timedelta(hours=16),
            "duration": 30,
            "meeting_url": links["teams"],
            "attendees": [owner, EXTERNALS[2]],
            "organizer": EXTERNALS[2],
            "bot_moves": [
                ("recording_permission_denied", "permission_denied_by_host"),
                ("done", None),
            ],
        },
    ]


def finished_meetings_of(calendar: dict[str, Any]) -> list[dict[str, Any]]:
    """Yesterday's meetings with their bots' moves, for an emulated calendar."""
    return finished_meetings(calendar["platform_email"] or "owner@example.com")


def working_week_of(calendar: dict[str, Any]) -> list[dict[str, Any]]:
    """The week of meetings for an emulated calendar, by its owner's address."""
    return working_week(calendar["platform_email"] or "owner@example.com")
