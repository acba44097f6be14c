"""An exception reporter filter that also hides what social-auth's own frames hold.

While a pipeline step runs, social-auth's frames above it hold the provider's access token and the
OAuth client secret in locals (``do_auth``'s ``access_token``, ``auth_complete``'s request
parameters). ``sensitive_variables`` can only mark our own functions, so a report of any pipeline
failure (social-auth's middleware logs 5xx ones with their traceback; a host without the middleware
answers 500) would show them. Set ``DEFAULT_EXCEPTION_REPORTER_FILTER`` to this class.
"""

from __future__ import annotations

from types import FrameType
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

#: Modules whose frames are reported without their local variables.
HIDDEN_MODULES = ("social_core.", "social_django.")


class RecallExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus every local of social-auth's frames hidden (when DEBUG is off)."""

    def get_traceback_frame_variables(self, request: Any, tb_frame: FrameType) -> Any:
        module = str(tb_frame.f_globals.get("__name__", ""))
        if self.is_active(request) and module.startswith(HIDDEN_MODULES):
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        return super().get_traceback_frame_variables(request, tb_frame)
