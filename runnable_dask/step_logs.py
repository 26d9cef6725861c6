"""Where a step's captured output is kept in its run's catalog: written by the task,
read back by the run's summary, ``show`` and the run's report."""

from __future__ import annotations


def log_name(internal_name: str) -> str:
    """A step's log, relative to its run's catalog folder."""
    return f"logs/{internal_name}.execution.log"
