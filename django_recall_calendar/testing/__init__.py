"""Offline stand-ins for Recall: RecallEmulator and the pytest plugin."""
