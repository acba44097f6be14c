"""Views, one module per area: webhook.py, calendars.py (HTML pages), api.py (REST API)."""
