"""Our own errors, when nothing catches them, end the program with their message only.

A failed run has already printed its summary, and a definition error says what to fix;
the Python traceback below either (our driver's internals) helps nobody. Any other
exception keeps Python's usual report.
"""

from __future__ import annotations

import sys
from types import TracebackType

from runnable_dask.exceptions import RunnableDaskError

_previous = sys.excepthook


def _report(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if isinstance(error, RunnableDaskError):
        print(f"{kind.__name__}: {error}", file=sys.stderr)
    else:
        _previous(kind, error, trace)


def install() -> None:
    """Render uncaught runnable_dask errors as one message (idempotent)."""
    if sys.excepthook is _previous:
        sys.excepthook = _report
