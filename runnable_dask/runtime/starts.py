"""Announce that a step started only if it is still running a moment later.

A step's record says when each attempt began, so a start event matters only while the
step runs: it shows it as running in the run log and the console, and tells a lost
attempt from a new one when a worker dies. Most steps of a sweep or a wide pipeline end
within milliseconds, and their start events doubled the messages of a run; so a start is
sent by one thread of the process when the step has run for :data:`DELAY` seconds, and
not at all if it ended before.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runnable_dask.runtime.context import Event, Send

DELAY = 0.1
"""Seconds a step runs before its start is announced."""


class _Announcer:
    """The start events of the steps running in this process, due at their deadlines.

    One thread sends them; it lives as long as the process and sleeps while no step
    runs (starting a thread for each burst of steps cost more than the steps).
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._due: dict[int, tuple[float, Send, Event]] = {}  # in order of deadline
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes = math.inf
        """When the thread wakes by itself: a step due later needs no notify (waking it
        for each step of a burst cost a sixth of a trivial step)."""

    def begin(self, send: Send, event: Event) -> int:
        handle = next(self._ids)
        due = time.monotonic() + DELAY
        with self._ready:
            self._due[handle] = (due, send, event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._announce, name="runnable-dask-starts", daemon=True
                )
                self._thread.start()
            elif due < self._wakes:
                self._ready.notify()
        return handle

    def end(self, handle: int) -> None:
        """The step ended: its start, if announced, went before anything it sends next."""
        with self._ready:
            self._due.pop(handle, None)

    def forget_thread(self) -> None:
        """In a forked child: the thread stayed in the parent."""
        self._ready = threading.Condition()
        self._due.clear()
        self._thread = None
        self._wakes = math.inf

    def _announce(self) -> None:
        """Send each start when due; held while sending, so a step's end cannot overtake it."""
        with self._ready:
            quiet = False
            while True:
                if not self._due:
                    # Nothing due: wake after DELAY anyway, in case more steps come; only
                    # after a DELAY without a step, wait to be told of the next one.
                    self._wakes = math.inf if quiet else time.monotonic() + DELAY
                    told = self._ready.wait(None if quiet else DELAY)
                    quiet = not told and not self._due
                    continue
                handle, (due, send, event) = next(iter(self._due.items()))
                wait = due - time.monotonic()
                if wait > 0:
                    self._wakes = due
                    self._ready.wait(wait)
                    continue
                del self._due[handle]
                try:
                    send([event])
                except Exception:  # the worker is closing; its run is ending anyway
                    continue


_ANNOUNCER = _Announcer()
os.register_at_fork(after_in_child=_ANNOUNCER.forget_thread)


@contextmanager
def announced(send: Send, event: Event) -> Iterator[None]:
    """While the block runs, ``event`` is sent once it has run for :data:`DELAY` seconds."""
    handle = _ANNOUNCER.begin(send, event)
    try:
        yield
    finally:
        _ANNOUNCER.end(handle)
