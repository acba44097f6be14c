"""The documentation's reference pages stay in step with the code they describe, and the README's
install snippets stay pasteable.

A setting, signal, management command or system check added without a line in the docs fails here,
and so does a settings row left behind for a key that no longer exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.dispatch import Signal

from django_recall_calendar import conf, signals

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMANDS_DIR = ROOT / "django_recall_calendar" / "management" / "commands"


def page(name: str) -> str:
    """A page of the documentation site."""
    return (DOCS / name).read_text(encoding="utf-8")


def table_keys(text: str) -> list[str]:
    """The backticked names in the first column of the Markdown table rows of ``text``."""
    return re.findall(r"^\| `([A-Za-z_]+)` \|", text, re.M)


SETTINGS_KEYS = table_keys(page("settings.md"))
SIGNALS_TEXT = page("reference.md")
CHECKS_TEXT = page("checks.md")
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


def declared_check_ids() -> set[str]:
    source = (ROOT / "django_recall_calendar" / "checks.py").read_text(encoding="utf-8")
    return set(re.findall(r'id="(recall_calendar\.[EW]\d{3})"', source))


@pytest.mark.parametrize("check_id", sorted(declared_check_ids()))
def test_every_system_check_is_explained(check_id: str) -> None:
    assert re.search(rf"^\| `{re.escape(check_id)}` \|", CHECKS_TEXT, re.M), check_id


def test_the_install_snippets_assign_each_setting_once() -> None:
    """Step 5 of an older README repeated INSTALLED_APPS and a second RECALL_CALENDAR replaced the
    first: pasted in order, a later block must extend a setting (``+=``), never assign it again."""
    import ast

    from tests.readme_blocks import files

    for variants in (frozenset(), frozenset({"database tasks"})):
        settings = files(variants)["mysite/settings.py"]
        assigned = [
            target.id
            for node in ast.parse(settings).body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        ]
        assert len(assigned) == len(set(assigned)), assigned


def test_the_readme_marks_a_file_for_every_snippet_the_host_needs() -> None:
    from tests.readme_blocks import blocks

    targets = {block.target for block in blocks()}
    assert targets == {"mysite/settings.py", "mysite/urls.py", "pytest.ini", "test_calendar.py"}
    assert {block.variant for block in blocks()} == {None, "database tasks"}
