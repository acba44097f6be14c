"""The Django admin for calendars, their events and webhook deliveries.

Importing the submodules registers their ModelAdmins on the default admin site (admin autodiscovery
imports this package).
"""

from . import calendars, deliveries, events, overview  # noqa: F401  (registration on import)
