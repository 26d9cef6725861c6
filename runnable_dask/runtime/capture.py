"""Capture what one step prints, even while other steps print in other threads.

A Dask worker runs several tasks at once in threads of one process, so swapping
``sys.stdout`` per task would mix their output. Instead ``sys.stdout``/``sys.stderr``
are replaced once by routers that send each write to the :class:`StepOutput` of the
step running in the writing thread, or to the original stream when no step captures
there. Log records emitted in that thread go to the same output.

The routers behave as real streams: ``buffer`` takes bytes, and ``fileno()`` gives a
descriptor a child process can write to. A step's output lives in memory until a
descriptor is asked for; then it moves to an anonymous temporary file (no name, so
nothing is left behind), which the step and its children write to in the order they
write. Threads share the process's file descriptors 1 and 2, so what a child inherits
there cannot be told apart per step: while a step captures, a child it starts without
``stdout=``/``stderr=`` (``subprocess``, ``os.system``) is given the step's descriptor
instead. Output written to descriptors 1 and 2 by C code in the step itself is not
captured.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from _typeshed import StrOrBytesPath

_local = threading.local()
_install_lock = threading.Lock()
ENCODING = "utf-8"
ERRORS = "backslashreplace"  # text that cannot be encoded is logged escaped, not lost


class StepOutput:
    """One step's output as bytes: in memory, or in a temporary file once a child
    process needs a descriptor to write to."""

    __slots__ = ("_file", "_memory")

    def __init__(self) -> None:
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: Any = None

    def write(self, text: str) -> int:
        self.write_bytes(text.encode(ENCODING, ERRORS))
        return len(text)

    def write_bytes(self, data: bytes) -> int:
        if self._memory is not None:
            return self._memory.write(data)
        return self._file.write(data)

    def flush(self) -> None:
        """Writes are not buffered here."""

    def fileno(self) -> int:
        """A descriptor for child processes: the output moves to a temporary file."""
        if self._file is None:
            # closed by close(), once the step's log is read
            self._file = tempfile.TemporaryFile(prefix="runnable-dask-", buffering=0)  # noqa: SIM115
            self._file.write(self._memory.getvalue() if self._memory is not None else b"")
            self._memory = None
        return self._file.fileno()

    def getbytes(self) -> bytes:
        """Everything written so far, by the step and by its children."""
        if self._memory is not None:
            return self._memory.getvalue()
        self._file.seek(0)
        data = self._file.read()
        self._file.seek(0, os.SEEK_END)
        return data

    def getvalue(self) -> str:
        return self.getbytes().decode(ENCODING, "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _sink() -> StepOutput | None:
    return getattr(_local, "sink", None)


class _BinaryRouter(io.RawIOBase):
    """``sys.stdout.buffer``: bytes to the thread's step, else to the original stream."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        sink = _sink()
        if sink is not None:
            return sink.write_bytes(bytes(data))
        binary = getattr(self.original, "buffer", None)
        if binary is not None:
            return binary.write(data)
        self.original.write(bytes(data).decode(ENCODING, "replace"))
        return len(data)

    def flush(self) -> None:
        if _sink() is None:
            getattr(self.original, "buffer", self.original).flush()

    def fileno(self) -> int:
        sink = _sink()
        return sink.fileno() if sink is not None else self.original.fileno()

    def isatty(self) -> bool:
        return False if _sink() is not None else self.original.isatty()


class _Router(io.TextIOBase):
    def __init__(self, original: TextIO) -> None:
        self.original = original
        self._binary = _BinaryRouter(original)

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        return (sink or self.original).write(text)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        sink = getattr(_local, "sink", None)
        (sink or self.original).flush()

    def fileno(self) -> int:
        sink = _sink()
        return sink.fileno() if sink is not None else self.original.fileno()

    def isatty(self) -> bool:
        return False if _sink() is not None else self.original.isatty()

    @property
    def buffer(self) -> _BinaryRouter:
        return self._binary

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return ENCODING if _sink() is not None else getattr(self.original, "encoding", ENCODING)

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return ERRORS if _sink() is not None else getattr(self.original, "errors", None)


class _RouteLogRecords(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_local, "sink", None)
        if sink is not None:
            sink.write(self.format(record) + "\n")


_handler = _RouteLogRecords()
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
_original_popen_init = subprocess.Popen.__init__
_original_system = os.system


def _popen_init(self: subprocess.Popen, *args: Any, **kwargs: Any) -> None:
    """A child started in a capturing thread writes to the step's log, not the console,
    unless told where to write (``stdout``/``stderr`` given, also positionally)."""
    sink = getattr(_local, "sink", None)
    if sink is not None and len(args) <= 4:
        if kwargs.get("stdout") is None:
            kwargs["stdout"] = sink.fileno()
        if kwargs.get("stderr") is None:
            kwargs["stderr"] = sink.fileno()
    _original_popen_init(self, *args, **kwargs)


def _system(command: StrOrBytesPath) -> int:
    """``os.system`` in a capturing thread: the command's output goes to the step's log;
    the same wait status is returned."""
    if getattr(_local, "sink", None) is None:
        return _original_system(command)
    code = subprocess.call(command, shell=True)  # as os.system does
    return code << 8 if code >= 0 else -code


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)
        root = logging.getLogger()
        if not any(isinstance(h, _RouteLogRecords) for h in root.handlers):
            root.addHandler(_handler)
        subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]
        os.system = _system


def capture_output() -> _Capture:
    """Route this thread's stdout, stderr, log records and children's output into a
    fresh :class:`StepOutput` (the caller closes it once it has read it)."""
    return _Capture()


class _Capture:
    """:func:`capture_output`'s context: a class, not a generator, since it wraps every
    attempt of every step."""

    __slots__ = ("previous",)

    def __enter__(self) -> StepOutput:
        # Checked each time: user code may replace the streams or the root's handlers.
        routed = isinstance(sys.stdout, _Router) and isinstance(sys.stderr, _Router)
        if not routed or _handler not in logging.root.handlers:
            _install()
        sink = StepOutput()
        self.previous = getattr(_local, "sink", None)
        _local.sink = sink
        return sink

    def __exit__(self, *_: object) -> None:
        _local.sink = self.previous
