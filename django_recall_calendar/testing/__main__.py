"""``python -m django_recall_calendar.testing``: run the emulator for the demo until Ctrl-C.

``--help`` and the start-up banner both print the Django settings that point a project at the
emulator, with the values actually in use, so nobody has to piece them together from the README.
"""

from __future__ import annotations

import argparse
import threading

from .emulator import RecallEmulator
from .webhooks import DEFAULT_SECRET

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_API_KEY = "test-api-key"


def settings_snippet(base_url: str, api_key: str, webhook_secret: str) -> str:
    """The settings a Django project needs to talk to an emulator at ``base_url``."""
    return f"""\
# settings.py of your project, to use this emulator instead of Recall:
RECALL_CALENDAR = {{
    "BASE_URL": "{base_url}",
    "API_KEY": "{api_key}",
    "WEBHOOK_SECRET": "{webhook_secret}",
}}
# Optional: its Google- and Microsoft-like consent pages instead of the real providers.
AUTHENTICATION_BACKENDS = [
    "django_recall_calendar.testing.backends.EmulatedGoogleOAuth2",
    "django_recall_calendar.testing.backends.EmulatedMicrosoftOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]
# Webhooks go to --webhook-url: your site's recall_calendar:webhook URL,
# e.g. http://127.0.0.1:8000/recall/webhooks/ with the app's URLs under recall/."""


def parser() -> argparse.ArgumentParser:
    """The command line, with every default shown and the settings to use as the epilog."""
    default_url = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    result = argparse.ArgumentParser(
        prog="python -m django_recall_calendar.testing",
        description="A local Recall.ai emulator: Calendar V2 and v1 bots API, signed webhooks, "
        "and Google- and Microsoft-like OAuth consent pages. Runs until Ctrl-C.",
        epilog="With the defaults:\n\n"
        + settings_snippet(default_url, DEFAULT_API_KEY, DEFAULT_SECRET),
        formatter_class=HelpFormatter,
    )
    result.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    result.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    result.add_argument(
        "--webhook-url",
        help="where to POST signed webhooks (your recall_calendar:webhook URL); without it "
        "webhooks are only recorded",
    )
    result.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help="the key clients must send (API_KEY)"
    )
    result.add_argument(
        "--webhook-secret",
        default=DEFAULT_SECRET,
        help="the secret webhooks are signed with (WEBHOOK_SECRET)",
    )
    result.add_argument(
        "--demo",
        action="store_true",
        help="connect each new calendar after --connect-delay seconds and seed a working week "
        "of meetings",
    )
    result.add_argument(
        "--connect-delay", type=float, default=1.0, help="seconds before --demo connects"
    )
    result.add_argument(
        "--kind",
        action="store_true",
        help="deliver webhooks at once, once, in order; no rate limits (Recall is not so kind)",
    )
    result.add_argument(
        "--time-scale", type=float, default=1.0, help="emulated seconds per real second"
    )
    return result


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option's help, and the epilog's settings kept as written."""


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    emulator = RecallEmulator(
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        host=args.host,
        port=args.port,
        auto_connect=args.demo,
        auto_connect_delay=args.connect_delay,
        seed_events=args.demo,
        unruly=not args.kind,
        rate_limits=not args.kind,
        time_scale=args.time_scale,
    )
    with emulator:
        print(f"Recall emulator on {emulator.base_url} (webhooks -> {args.webhook_url or 'none'})")
        print("OAuth: /oauth/google/authorize, /oauth/microsoft/authorize.\n")
        print(settings_snippet(emulator.base_url, args.api_key, args.webhook_secret) + "\n")
        print("Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Stopping.")


if __name__ == "__main__":
    main()
