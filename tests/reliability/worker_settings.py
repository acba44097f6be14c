"""Settings of the worker processes tests/reliability/test_crash.py starts and kills.

The test suite's settings (the database comes from ``DATABASE_URL``), with the emulator's
RECALL_CALENDAR passed in by the test as JSON.
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import RECALL_CALENDAR

RECALL_CALENDAR = {**RECALL_CALENDAR, **json.loads(os.environ.get("RECALL_CALENDAR_JSON", "{}"))}
