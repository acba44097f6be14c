"""``python -m benchmarks.emulator_process EVENTS``: an emulator holding one connected calendar with
EVENTS events, in its own process, so its memory is not counted in the process that syncs.

Prints one JSON line (``base_url``, ``calendar_id``, ``email``, ``api_key``, ``webhook_secret``)
once ready, and runs until its standard input closes.
"""

from __future__ import annotations

import json
import sys

from django_recall_calendar.testing import RecallEmulator

from .harness import ORDERLY

API_KEY = "bench-api-key"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EMAIL = "owner@example.com"


def main(events: int) -> None:
    with RecallEmulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, **ORDERLY) as running:
        remote = running.create_calendar("google_calendar", oauth_email=EMAIL)
        running.connect_calendar(remote["id"], email=EMAIL)
        running.add_events(remote["id"], events, notify=False)
        ready = {"base_url": running.base_url, "calendar_id": remote["id"], "email": EMAIL}
        print(json.dumps(ready), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(int(sys.argv[1]))
