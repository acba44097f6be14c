"""tasks.Handoff: deliveries stored while another request enqueues go out with that request.

The webhook endpoint hands each stored delivery to the task queue once its answer is sent; under
load one push must carry every delivery waiting in the process, and none may be left behind or
sent twice.
"""

from __future__ import annotations

import threading

from django_recall_calendar import tasks


class BlockingQueue:
    """A task queue whose first push waits until the test lets it through."""

    def __init__(self) -> None:
        self.pushed: list[list[int]] = []
        self.pushing = threading.Event()
        self.let_through = threading.Event()

    def push(self, batch: list[int]) -> None:
        if not self.pushed:
            self.pushing.set()
            self.let_through.wait(timeout=30)
        self.pushed.append(batch)


def test_deliveries_stored_during_a_push_go_out_together_in_the_next_one():
    queue = BlockingQueue()
    handoff = tasks.Handoff(queue.push)
    first = threading.Thread(target=handoff.add, args=([1],))
    first.start()
    assert queue.pushing.wait(timeout=30)

    handoff.add([2])  # returns at once: the request pushing now takes it
    handoff.add([3])
    queue.let_through.set()
    first.join(timeout=30)

    assert queue.pushed == [[1], [2, 3]]


def test_a_lone_delivery_goes_out_at_once():
    pushed: list[list[int]] = []
    handoff = tasks.Handoff(pushed.append)

    handoff.add([7])
    handoff.add([8])

    assert pushed == [[7], [8]]


def test_a_failed_push_is_logged_and_the_next_delivery_still_goes_out(caplog):
    pushed: list[list[int]] = []

    def push(batch: list[int]) -> None:
        if batch == [1]:
            raise ConnectionError("queue down")
        pushed.append(batch)

    handoff = tasks.Handoff(push)
    handoff.add([1])  # its row stays received: recall_webhooks --retry-failed takes it
    handoff.add([2])

    assert pushed == [[2]]
    assert "Could not enqueue webhook deliveries [1]" in caplog.text
