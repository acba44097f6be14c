"""Offline stand-ins for Recall: ``RecallEmulator``, and its pytest fixture in ``pytest_plugin``."""

from .emulator import LoggedRequest, RecallEmulator
from .webhooks import Delivery, signed_headers

__all__ = ["Delivery", "LoggedRequest", "RecallEmulator", "signed_headers"]
