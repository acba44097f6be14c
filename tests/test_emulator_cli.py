"""The emulator's command line explains itself: defaults in --help, settings to paste at start."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from django_recall_calendar.testing.webhooks import DEFAULT_SECRET

COMMAND = [sys.executable, "-m", "django_recall_calendar.testing"]


def settings_from(text: str) -> dict:
    """Run the Python settings block printed by the command, as a settings.py would."""
    block = text[text.index("# settings.py of your project") :].split("\n\n", 1)[0]
    namespace: dict = {}
    exec(block, namespace)  # the snippet must be valid Python as printed
    return namespace


def test_help_shows_every_default_and_the_settings_to_use():
    result = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    for default in ("(default: 127.0.0.1)", "(default: 8765)", "(default: test-"):
        assert default in help_text
    assert f"(default: {DEFAULT_SECRET})" in " ".join(help_text.split())
    shown = settings_from(help_text)
    assert shown["RECALL_CALENDAR"] == {
        "BASE_URL": "http://127.0.0.1:8765",
        "API_KEY": "test-api-key",
        "WEBHOOK_SECRET": DEFAULT_SECRET,
    }
    assert (
        "django_recall_calendar.testing.backends.EmulatedGoogleOAuth2"
        in (shown["AUTHENTICATION_BACKENDS"])
    )


def test_at_start_it_prints_settings_that_reach_it():
    """The printed RECALL_CALENDAR, used as is, authenticates against the running emulator."""
    secret = "whsec_c2VjcmV0LWZvci10aGUtY2xpLXRlc3Q="
    command = [*COMMAND, "--port", "0", "--api-key", "cli-key", "--webhook-secret", secret]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while not lines or "Ctrl-C stops" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "the emulator exited before printing its settings: " + "".join(lines)
            lines.append(line)
        recall = settings_from("".join(lines))["RECALL_CALENDAR"]
        assert recall["API_KEY"] == "cli-key" and recall["WEBHOOK_SECRET"] == secret
        answer = requests.get(
            f"{recall['BASE_URL']}/api/v2/calendars/",
            headers={"Authorization": f"Token {recall['API_KEY']}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"] == []
    finally:
        process.terminate()
        process.wait(5)
