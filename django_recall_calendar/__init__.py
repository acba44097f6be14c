"""Connect users' calendars to Recall.ai Calendar V2 and send bots to their meetings."""

__version__ = "0.1.0"
