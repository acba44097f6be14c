"""Settings for the processes tests/test_budget.py races: the suite's, with the RECALL_CALENDAR
(emulator, store, rates) the test passes as JSON."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import RECALL_CALENDAR

RECALL_CALENDAR = {**RECALL_CALENDAR, **json.loads(os.environ.get("RECALL_CALENDAR_JSON", "{}"))}
