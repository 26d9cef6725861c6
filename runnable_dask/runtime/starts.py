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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runnable_dask.runtime.context import Event, Send

DELAY = 0.1
"""Seconds a step runs before its start is announced."""


class _Announcer:
    """The start events of the steps running in this process, due at their deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, Send, Event]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def begin(self, send: Send, event: Event) -> int:
        handle = next(self._ids)
        with self._lock:
            self._due[handle] = (time.monotonic() + DELAY, send, event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._announce, name="runnable-dask-starts", daemon=True
                )
                self._thread.start()
        return handle

    def end(self, handle: int) -> None:
        """The step ended: its start, if announced, went before anything it sends next."""
        with self._lock:
            self._due.pop(handle, None)

    def _announce(self) -> None:
        """Send what is due, four times a delay; end when no step is running."""
        while True:
            time.sleep(DELAY / 4)
            now = time.monotonic()
            with self._lock:  # held while sending, so a step's end cannot overtake it
                for handle in [h for h, (due, _, _) in self._due.items() if due <= now]:
                    _, send, event = self._due.pop(handle)
                    try:
                        send([event])
                    except Exception:  # the worker is closing; its run is ending anyway
                        continue
                if not self._due:
                    self._thread = None
                    return


_ANNOUNCER = _Announcer()


@contextmanager
def announced(send: Send, event: Event) -> Iterator[None]:
    """While the block runs, ``event`` is sent once it has run for :data:`DELAY` seconds."""
    handle = _ANNOUNCER.begin(send, event)
    try:
        yield
    finally:
        _ANNOUNCER.end(handle)
