"""Our own errors, when nothing catches them, end the program with their message only.

A failed run has already printed its summary, and a definition error says what to fix;
the Python traceback below either (our driver's internals) helps nobody. An interrupt
that stopped a run (its summary printed) ends the program with one line. Any other
exception keeps Python's usual report.
"""

from __future__ import annotations

import sys
from types import TracebackType

from runnable_dask.exceptions import RunnableDaskError

_previous = sys.excepthook


_reported: dict[int, str] = {}
"""Interrupts a run has reported in its summary (by id), with the run's id."""


def _report(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if isinstance(error, RunnableDaskError):
        print(f"{kind.__name__}: {error}", file=sys.stderr)
    elif id(error) in _reported:
        # Python still exits as killed by SIGINT (status 130 in a shell) after this hook.
        print(f"Interrupted: run {_reported[id(error)]} stopped", file=sys.stderr)
    else:
        _previous(kind, error, trace)


def quiet_interrupt(error: BaseException, run_id: str) -> None:
    """A run's summary has reported ``error`` (a KeyboardInterrupt): if nothing catches
    it, end the program with one line instead of a traceback."""
    if isinstance(error, KeyboardInterrupt):
        _reported.clear()  # only the latest interrupt can still be uncaught
        _reported[id(error)] = run_id


def install() -> None:
    """Render uncaught runnable_dask errors as one message (idempotent)."""
    if sys.excepthook is _previous:
        sys.excepthook = _report
