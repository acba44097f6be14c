"""The README's reference sections stay in step with the code they describe.

A setting, signal or management command added without a line in the README fails here, and so does a
settings row left behind for a key that no longer exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.dispatch import Signal

from django_recall_calendar import conf, signals

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS_DIR = ROOT / "django_recall_calendar" / "management" / "commands"


def section(heading: str) -> str:
    """The text under a ``## heading`` of the README, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def table_keys(text: str) -> list[str]:
    """The backticked names in the first column of the Markdown table rows of ``text``."""
    return re.findall(r"^\| `([A-Za-z_]+)` \|", text, re.M)


SETTINGS_KEYS = table_keys(section("Settings reference"))
SIGNALS_TEXT = section("Signals, commands, admin, URLs")
SIGNAL_NAMES = sorted(name for name, value in vars(signals).items() if isinstance(value, Signal))
COMMAND_NAMES = sorted(path.stem for path in COMMANDS_DIR.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("key", sorted(conf.DEFAULTS))
def test_every_setting_has_a_row_in_the_settings_reference(key: str) -> None:
    assert key in SETTINGS_KEYS, f"RECALL_CALENDAR[{key!r}] is missing from the settings reference"


def test_the_settings_reference_names_no_unknown_key_and_none_twice() -> None:
    assert sorted(SETTINGS_KEYS) == sorted(conf.DEFAULTS)


@pytest.mark.parametrize("name", SIGNAL_NAMES)
def test_every_signal_has_a_row_in_the_signals_table(name: str) -> None:
    assert name in table_keys(SIGNALS_TEXT), f"signal {name} is missing from the README"


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_management_command_is_described(name: str) -> None:
    assert re.search(rf"^- `{name}[ `]", SIGNALS_TEXT, re.M), f"command {name} is not described"


def test_the_code_has_what_the_reference_checks() -> None:
    """Guard against the lists above being silently empty (a moved module, a renamed section)."""
    assert len(SIGNAL_NAMES) >= 5
    assert {"recall_sync", "recall_webhooks"} <= set(COMMAND_NAMES)
    assert len(SETTINGS_KEYS) >= 20
