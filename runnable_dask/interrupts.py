"""An interrupt (Ctrl-C, SIGINT) that stops the run even when Python drops it.

Python raises ``KeyboardInterrupt`` wherever the main thread is when the signal arrives.
Inside a collection's callback (distributed's GC diagnostics register one in a process
that holds a scheduler) or a finaliser, Python reports that exception as unraisable and
drops it: the run went on as if never interrupted (seen in CI: a run interrupted during
a notebook step ran on). While a run goes, the driver's handler notes each SIGINT before
raising, and the driver's loop raises the interrupt again if it was noted and never
reached it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupts:
    """The SIGINTs a run received."""

    def __init__(self) -> None:
        self.received = False

    def raise_if_received(self) -> None:
        """Raise the interrupt that was received but dropped on its way here."""
        if self.received:
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        raise KeyboardInterrupt


@contextmanager
def noted_interrupts() -> Iterator[Interrupts]:
    """While the block runs, SIGINT is noted as well as raised.

    Only where Python's own handler is in place, in the main thread: a handler the
    program installed is left as it is (nothing is noted then).
    """
    interrupts = Interrupts()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield interrupts
        return
    signal.signal(signal.SIGINT, interrupts._handle)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
