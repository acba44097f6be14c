"""Recall's failure modes on demand: throttling, server errors, stalls past a client's timeout."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .server import Response

STATUS_KINDS = ("401", "403", "409", "429", "500", "502", "503", "504", "507")
# "stall": handled, then answered late (past a client's timeout); "slow": held before it is
# handled, so a repeat with the same Idempotency-Key meanwhile finds it still in flight;
# "applied_500": handled, then answered 500 (Recall failed after acting: a repeat with the same
# Idempotency-Key gets the first answer).
AFTER_HANDLING = ("stall", "slow", "applied_500")
KINDS = (*STATUS_KINDS, *AFTER_HANDLING)

_HTML_ERRORS = {
    "403": "403 Forbidden",  # Recall's firewall answers with an HTML page
    "502": "502 Bad Gateway",
    "503": "503 Service Temporarily Unavailable",
    "504": "504 Gateway Time-out",
}


@dataclass
class Fault:
    kind: str
    remaining: int = 1
    path: str | None = None
    #: Seconds in the ``Retry-After`` of a 429 or 507; None sends no header at all.
    retry_after: float | None = 1
    seconds: float = 3.0
    #: Matching requests let through before the fault starts (e.g. a listing failing at page 3).
    after: int = 0

    def retry_after_header(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}

    def applies_to(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


def fault_response(fault: Fault) -> Response:
    """What Recall (or the load balancer in front of it) answers for this fault."""
    kind = fault.kind
    if kind == "429":
        expected = (
            ""
            if fault.retry_after is None
            else f" Expected available in {fault.retry_after:g} seconds."
        )
        return Response.json(
            429, {"detail": f"Request was throttled.{expected}"}, fault.retry_after_header()
        )
    if kind in _HTML_ERRORS:
        title = _HTML_ERRORS[kind]
        return Response.html(
            int(kind),
            f"<html><head><title>{title}</title></head>"
            f"<body><center><h1>{title}</h1></center></body></html>",
        )
    if kind == "401":  # a revoked or mistyped API key
        return Response.json(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
    if kind == "409":
        return Response.json(409, {"code": "conflict", "message": "Conflicting request, retry."})
    if kind == "507":
        return Response.json(
            507,
            {"code": "no_bots_available", "message": "No bots available in the ad-hoc pool."},
            fault.retry_after_header(),
        )
    return Response.json(500, {"detail": "A server error occurred."})


class FaultInjector:
    """Queued faults for the next matching requests, plus an optional random fault rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._rate = 0.0
        self._rate_kinds: tuple[str, ...] = ()
        self._rate_fault = Fault("500")
        self._random = random.Random()

    def add(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise ValueError(f"Unknown fault kind {fault.kind!r}; expected one of {KINDS}.")
        with self._lock:
            self._queue.append(fault)

    def set_rate(
        self, rate: float, kinds: tuple[str, ...], seed: int | None, template: Fault
    ) -> None:
        """Fail a random share of requests; ``template`` gives Retry-After and stall length."""
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"Unknown fault kinds: {sorted(unknown)}")
        with self._lock:
            self._rate, self._rate_kinds, self._rate_fault = rate, kinds, template
            self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rate = 0.0

    def take(self, path: str) -> Fault | None:
        """The fault this request suffers, if any (queued faults first, then the random rate)."""
        with self._lock:
            for fault in self._queue:
                if not fault.applies_to(path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._queue.remove(fault)
                return fault
            if self._rate and self._random.random() < self._rate:
                kind = self._random.choice(self._rate_kinds)
                template = self._rate_fault
                return Fault(kind, retry_after=template.retry_after, seconds=template.seconds)
        return None
