"""How a task on a Dask worker sends its events to the driver, through the scheduler.

The driver subscribes to the run's topic of the scheduler's event log; a task logs its
events there. The one place in runnable_dask that touches distributed's internals: it
puts a message on the worker's batched stream (``BatchedSend.buffer`` and
``message_count``, distributed 2026.8) so that it rides the task's completion instead of
going alone. ``tests/runtime/test_topic_reporter.py`` fails if those internals change.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runnable_dask.compact import Compact
from runnable_dask.runtime.context import Send
from runnable_dask.runtime.events import Event, Message, pack

if TYPE_CHECKING:
    from distributed.batched import BatchedSend


@dataclass(frozen=True, slots=True)
class TopicReporter(Compact):
    """Sends events from a Dask worker to the driver, which subscribes to ``topic``."""

    topic: str

    def __call__(self, events: list[Event]) -> None:
        self.sender()(events)

    def sender(self) -> Send:
        from distributed import get_worker

        return functools.partial(_outbox(get_worker()).put, self.topic)


RIDE = 0.05
"""Seconds an event waits, at most, for the worker's next message to the scheduler."""


class _Outbox:
    """A worker's events on their way to its event loop, which sends those that came
    while it was busy as one message per topic.

    A message per task made the scheduler handle, and forward to the driver, one more
    message for each task than bare Dask, and made each task wake the worker's loop once
    more: the tasks of a wide pipeline finish several at a time on a worker's threads.

    Lock-free: a task appends its events, then schedules a drain unless one is due; a
    drain first says none is due, then takes everything appended. An append the drain
    misses saw no drain due, so it schedules the next one. A task's events are appended
    before its completion is handed to the loop, so the drain that takes them runs first
    and they reach the scheduler no later than the completion.
    """

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.pending: deque[tuple[str, list[Event]]] = deque()
        self.due = False
        self.flush_due = False
        """A flush of the stream is set for later (one at a time: it sends whatever is
        queued then, and a drain sets the next; one per drain was a timer per task)."""

    def put(self, topic: str, events: list[Event]) -> None:
        self.pending.append((topic, events))
        if not self.due:
            self.due = True
            self.worker.loop.add_callback(self._drain)

    def _drain(self) -> None:
        self.due = False
        by_topic: dict[str, list[Event]] = {}
        while self.pending:
            topic, events = self.pending.popleft()
            by_topic.setdefault(topic, []).extend(events)
        if not by_topic:
            return
        stream = self.worker.batched_stream
        for topic, events in by_topic.items():
            # One message of bytes: Dask checks, sizes and copies a nested message field
            # by field, which cost a worker more than running a trivial step.
            _with_next_batch(stream, {"op": "log-event", "topic": topic, "msg": pack(events)})
        if not self.flush_due:
            self.flush_due = True
            self.worker.loop.call_later(RIDE, self._flush_later)

    def _flush_later(self) -> None:
        self.flush_due = False
        _flush(self.worker.batched_stream)


_OUTBOXES: weakref.WeakKeyDictionary[Any, _Outbox] = weakref.WeakKeyDictionary()


def _outbox(worker: Any) -> _Outbox:
    """The worker's outbox (two made at once by two threads both deliver theirs)."""
    found = _OUTBOXES.get(worker)
    if found is None:
        found = _OUTBOXES.setdefault(worker, _Outbox(worker))
    return found


def _with_next_batch(stream: BatchedSend, message: dict[str, Any]) -> None:
    """Queue ``message`` for the worker's next batch to the scheduler (the caller makes
    sure it is sent within RIDE s).

    A task's events come just before its completion. Sent at once (``Worker.log_event``),
    an event goes alone and the completion, a millisecond later, waits out the stream's
    2 ms interval: 2 ms more on every step of a chain. Queued, they go together.

    Measured with the public ``Worker.log_event`` instead (``benchmarks/bench.py --only
    chain wide map --repeat 3``, 2026-12-01, a busy 2-core machine, ratios to bare Dask in
    one run): chain 1000 1.52x against 1.11x here, wide 1000 2.08x against 1.80x (map
    10000: 1.73x against 1.98x, within this machine's noise). So the internals stay, here
    and in ``_flush`` only.
    """
    stream.buffer.append(message)
    stream.message_count += 1


def _flush(stream: BatchedSend) -> None:
    """Send what is queued, if the task's completion did not carry it already (an empty
    send would still wake the stream's sender, once for every event of the run)."""
    if not stream.buffer:
        return
    from distributed.comm import CommClosedError

    with contextlib.suppress(CommClosedError):  # the worker is closing; so is its run
        stream.send()


def put_message(events: queue.SimpleQueue, message: bytes) -> None:
    """On the driver: a task's message (a map iteration's step and branch end, say) onto
    the run's events queue, as it came (the driver unpacks it when it gets to it)."""
    events.put(Message(message))
