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
from collections import deque

from runnable_dask.runtime.context import Event, Send

DELAY = 0.1
"""Seconds a step runs before its start is announced."""


class _Announcer:
    """The start events of the steps running in this process, due at their deadlines.

    One thread sends them; it lives as long as the process and sleeps while no step
    runs (starting a thread for each burst of steps cost more than the steps). A step
    that ends before its deadline takes no lock: it begins and ends with one atomic
    operation each on a deque and a dict (a lock shared by every thread of a pool was a
    tenth of a trivial step).
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._sending = threading.Lock()
        """Held by the thread while it sends a start: a step that ends then waits for it."""
        self._queue: deque[tuple[int, float]] = deque()  # (handle, deadline), in order
        self._live: dict[int, tuple[Send, Event]] = {}  # steps begun and not ended or sent
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes = math.inf
        """When the thread wakes by itself: a step due later needs no notify (waking it
        for each step of a burst cost a sixth of a trivial step)."""

    def begin(self, send: Send, event: Event) -> int:
        handle = next(self._ids)
        due = time.monotonic() + DELAY
        self._live[handle] = (send, event)
        self._queue.append((handle, due))
        if due < self._wakes:  # the thread sleeps past this deadline, or there is none yet
            with self._ready:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._announce, name="runnable-dask-starts", daemon=True
                    )
                    self._thread.start()
                else:
                    self._ready.notify()
        return handle

    def end(self, handle: int) -> None:
        """The step ended: its start, if announced, went before anything it sends next."""
        if self._live.pop(handle, None) is None:  # the thread took it: wait until it is sent
            with self._sending:
                pass

    def forget_thread(self) -> None:
        """In a forked child: the thread stayed in the parent."""
        self._ready = threading.Condition()
        self._sending = threading.Lock()
        self._queue.clear()
        self._live.clear()
        self._thread = None
        self._wakes = math.inf

    def _announce(self) -> None:
        """Send each start when due, unless its step ended first."""
        with self._ready:
            quiet = False
            while True:
                if not self._queue:
                    # Nothing due: wake after DELAY anyway, in case more steps come; only
                    # after a DELAY without a step, wait to be told of the next one. A step
                    # that begins after this check sees the new ``_wakes`` and tells.
                    self._wakes = math.inf if quiet else time.monotonic() + DELAY
                    if self._queue:
                        continue
                    told = self._ready.wait(None if quiet else DELAY)
                    quiet = not told and not self._queue
                    continue
                handle, due = self._queue[0]
                if handle in self._live and (wait := due - time.monotonic()) > 0:
                    self._wakes = due
                    self._ready.wait(wait)
                    continue
                self._queue.popleft()
                self._send(handle)

    def _send(self, handle: int) -> None:
        with self._sending:
            taken = self._live.pop(handle, None)
            if taken is None:  # the step ended before its deadline
                return
            send, event = taken
            try:
                send([event])
            except Exception:  # the worker is closing; its run is ending anyway
                return


_ANNOUNCER = _Announcer()
os.register_at_fork(after_in_child=_ANNOUNCER.forget_thread)


def announced(send: Send, event: Event) -> _Announced:
    """While the block runs, ``event`` is sent once it has run for :data:`DELAY` seconds."""
    return _Announced(send, event)


class _Announced:
    """:func:`announced`'s context: a class, not a generator, since it wraps every step."""

    __slots__ = ("event", "handle", "send")

    def __init__(self, send: Send, event: Event) -> None:
        self.send = send
        self.event = event
        self.handle = 0

    def __enter__(self) -> None:
        self.handle = _ANNOUNCER.begin(self.send, self.event)

    def __exit__(self, *_: object) -> None:
        _ANNOUNCER.end(self.handle)
