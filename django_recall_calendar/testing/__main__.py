"""``python -m django_recall_calendar.testing``: run the emulator for the demo until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from .emulator import RecallEmulator
from .webhooks import DEFAULT_SECRET


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A local Recall.ai emulator (Calendar V2 + OAuth)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--webhook-url", help="where to POST signed webhooks")
    parser.add_argument("--api-key", default="test-api-key")
    parser.add_argument("--webhook-secret", default=DEFAULT_SECRET)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="connect new calendars after ~1 s and seed a working week of meetings",
    )
    parser.add_argument(
        "--connect-delay", type=float, default=1.0, help="seconds before --demo connects"
    )
    args = parser.parse_args(argv)
    emulator = RecallEmulator(
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        host=args.host,
        port=args.port,
        auto_connect=args.demo,
        auto_connect_delay=args.connect_delay,
        seed_events=args.demo,
    )
    with emulator:
        print(f"Recall emulator on {emulator.base_url} (webhooks -> {args.webhook_url or 'none'})")
        print("OAuth: /oauth/google/authorize, /oauth/microsoft/authorize. Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Stopping.")


if __name__ == "__main__":
    main()
