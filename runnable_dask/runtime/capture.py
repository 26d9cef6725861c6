"""Capture what one step prints, even while other steps print in other threads.

A Dask worker runs several tasks at once in threads of one process, so swapping
``sys.stdout`` per task would mix their output. Instead ``sys.stdout``/``sys.stderr``
are replaced once by routers that send each write to the buffer of the step running
in the writing thread, or to the original stream when no step captures there. Log
records emitted in that thread go to the same buffer.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_local = threading.local()
_install_lock = threading.Lock()


class _Router(io.TextIOBase):
    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer = getattr(_local, "buffer", None)
        return (buffer or self.original).write(text)

    def flush(self) -> None:
        buffer = getattr(_local, "buffer", None)
        (buffer or self.original).flush()

    def isatty(self) -> bool:
        return False if getattr(_local, "buffer", None) else self.original.isatty()

    @property  # typeshed has a plain attribute; here it is the original stream's
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


class _RouteLogRecords(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.write(self.format(record) + "\n")


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)
        root = logging.getLogger()
        if not any(isinstance(h, _RouteLogRecords) for h in root.handlers):
            handler = _RouteLogRecords()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)


@contextmanager
def capture_output() -> Iterator[io.StringIO]:
    """Route this thread's stdout, stderr and log records into a fresh buffer."""
    _install()
    buffer = io.StringIO()
    previous = getattr(_local, "buffer", None)
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = previous
