"""When webhooks go out: at once and in order (kind), or as Svix really delivers them (unruly).

Unruly delivery holds each message for a random delay, sends some twice, lets copies overtake each
other, and retries a refused or unreachable delivery on Svix's schedule (5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 10 h, in emulated time). Every refused or unreachable attempt is logged and kept in
``failures`` whatever the mode, so a test can assert that nothing was lost.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from dataclasses import dataclass

from .clock import TimeScale
from .webhooks import Delivery, WebhookSender

logger = logging.getLogger("django_recall_calendar.testing")

# Seconds between a failed attempt and the next one, as Svix retries Recall's webhooks.
RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass
class UnrulyOptions:
    """How unruly: the longest hold (emulated seconds) and the share of messages sent twice."""

    max_delay: float = 0.5
    duplicate_rate: float = 0.2
    seed: int | None = None


class DeliveryQueue:
    """Messages waiting to be sent, ordered by when they are due (real monotonic time)."""

    def __init__(
        self, sender: WebhookSender, clock: TimeScale, unruly: UnrulyOptions | None
    ) -> None:
        self.sender = sender
        self.clock = clock
        self.unruly = unruly
        self.failures: list[Delivery] = []
        self._random = random.Random(unruly.seed if unruly else None)
        self._heap: list[tuple[float, int, Delivery, int]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._busy = 0

    # ----- queueing --------------------------------------------------------------------------
    def put(self, delivery: Delivery) -> None:
        """Queue a new message: once (kind), or held, perhaps twice (unruly)."""
        copies = [delivery]
        if self.unruly and self._random.random() < self.unruly.duplicate_rate:
            copies.append(self.sender.resign(delivery))
        for copy in copies:
            delay = self._random.uniform(0, self.unruly.max_delay) if self.unruly else 0.0
            self._push(copy, 0, self.clock.real(delay))

    def _push(self, delivery: Delivery, attempt: int, delay: float) -> None:
        with self._changed:
            due = time.monotonic() + delay
            heapq.heappush(self._heap, (due, next(self._order), delivery, attempt))
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._heap) + self._busy

    # ----- sending ---------------------------------------------------------------------------
    def send(self, delivery: Delivery, attempt: int = 0) -> Delivery:
        """One attempt now; a refused or unreachable one is logged (and, unruly, retried later)."""
        result = self.sender.deliver(delivery)
        if not result.ok:
            self.failures.append(result)
            retry = self.unruly is not None and attempt < len(RETRY_SCHEDULE)
            logger.warning(
                "Webhook %s (%s) not accepted: %s%s",
                result.id,
                result.event,
                result.error or f"HTTP {result.status}",
                f"; retry in {RETRY_SCHEDULE[attempt]:g} s" if retry else "",
            )
            if retry:
                self._push(
                    self.sender.resign(delivery),
                    attempt + 1,
                    self.clock.real(RETRY_SCHEDULE[attempt]),
                )
        return result

    def _take(self, *, due_only: bool) -> tuple[Delivery, int] | None:
        with self._changed:
            if not self._heap:
                return None
            if due_only and self._heap[0][0] > time.monotonic():
                return None
            if self.unruly and not due_only:
                index = self._random.randrange(len(self._heap))
                entry = self._heap.pop(index)
                heapq.heapify(self._heap)
            else:
                entry = heapq.heappop(self._heap)
            self._busy += 1
            return entry[2], entry[3]

    def _done(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    def drain(self) -> list[Delivery]:
        """Send, in this thread, what is queued now (in no particular order when unruly);
        retries it causes wait for their time."""
        with self._changed:
            count = len(self._heap)
        sent = []
        for _ in range(count):
            taken = self._take(due_only=False)
            if taken is None:
                break
            try:
                sent.append(self.send(*taken))
            finally:
                self._done()
        return sent

    def settle(self, timeout: float = 30.0) -> list[Delivery]:
        """Send everything, retries included, waiting for their time, until nothing is left."""
        deadline = time.monotonic() + timeout
        sent: list[Delivery] = []
        while True:
            taken = self._take(due_only=True)
            if taken is not None:
                try:
                    sent.append(self.send(*taken))
                finally:
                    self._done()
                continue
            with self._changed:
                if not self._heap and not self._busy:
                    return sent
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._heap)} webhooks still queued after {timeout} s")
                wait = self._heap[0][0] - time.monotonic() if self._heap else remaining
                self._changed.wait(min(max(wait, 0.001), remaining))

    def run(self, stopping: threading.Event) -> None:
        """The sender thread of a URL target: send each message when it is due."""
        while not stopping.is_set():
            # An in-process target runs in the test's thread (deliver_pending, settle), never here.
            taken = self._take(due_only=True) if isinstance(self.sender.target, str) else None
            if taken is not None:
                try:
                    self.send(*taken)
                finally:
                    self._done()
                continue
            with self._changed:
                wait = self._heap[0][0] - time.monotonic() if self._heap else 0.5
                self._changed.wait(min(max(wait, 0.001), 0.5))

    def stop(self) -> None:
        with self._changed:
            self._changed.notify_all()
