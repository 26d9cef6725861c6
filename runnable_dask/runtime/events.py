"""What tasks tell the driver (and the dashboard): small typed records, one per kind.

A task reports its step's start (only if it runs long enough, see
:mod:`runnable_dask.runtime.starts`), a retry, its end with the attempts it made, and a
branch's or the run's end. On a cluster they travel from the worker through the
scheduler as one msgpack message per task: :func:`pack` writes each event as its kind's
code and its field values in order (no field names, no nested maps to size and copy), and
:func:`unpack` rebuilds them. Attempt and parameter records inside stay plain JSON-shaped
dicts: they are the run log's own records, stored as they come.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from runnable_dask.compact import Compact

Record = dict[str, Any]
"""An attempt, data-catalog or parameter record in the run log's JSON shape."""


@dataclass(frozen=True, slots=True)
class StepStarted(Compact):
    """A step began: shown as running until its end arrives."""

    internal_name: str
    template: str
    """The step's name in the plan, with a placeholder for each item that fills it."""
    items: tuple[str, ...]
    name: str
    step_type: str
    start_time: str


@dataclass(frozen=True, slots=True)
class StepRetrying(Compact):
    """An attempt failed and attempt number ``attempt`` follows (the attempts themselves
    are recorded with the step's end; this tells a live view the step is retrying)."""

    internal_name: str
    template: str
    items: tuple[str, ...]
    name: str
    step_type: str
    start_time: str
    attempt: int
    message: str


@dataclass(frozen=True, slots=True)
class StepEnded(Compact):
    """A step's record as the run log keeps it.

    ``started`` names the run of a task whose start was announced (a worker lost after
    the announcement leaves an attempt to close); ``reused``: the step finished in the
    run this one resumes, and its checkpoint stood in for running it.
    """

    internal_name: str
    template: str
    items: tuple[str, ...]
    name: str
    step_type: str
    status: str
    message: str = ""
    attempts: list[Record] = field(default_factory=list)
    data_catalog: list[Record] = field(default_factory=list)
    mock: bool = False
    started: str = ""
    reused: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BranchEnded(Compact):
    """A branch instance (a Parallel's branch, a map item, a loop iteration) reached its
    terminal; ``parameters`` are the values it set."""

    terminal: StepEnded
    internal_name: str
    template: str
    items: tuple[str, ...]
    status: str
    parameters: dict[str, Record]


@dataclass(frozen=True, slots=True)
class RunEnded(Compact):
    """The pipeline reached its terminal; ``parameters`` are the run's final values."""

    terminal: StepEnded
    status: str
    parameters: dict[str, Record]


Event = StepStarted | StepRetrying | StepEnded | BranchEnded | RunEnded

_KINDS: tuple[type[Any], ...] = (StepStarted, StepRetrying, StepEnded, BranchEnded, RunEnded)
_CODE = {kind: code for code, kind in enumerate(_KINDS)}
_ENDS = (BranchEnded, RunEnded)


def _wire(event: Event) -> list[Any]:
    values: list[Any] = [_CODE[type(event)], *event.__reduce__()[1]]  # its fields, in order
    if isinstance(event, _ENDS):
        values[1] = _wire(event.terminal)
    return values


def _event(values: list[Any]) -> Event:
    kind = _KINDS[values[0]]
    if kind in _ENDS:
        values[1] = _event(values[1])
        if kind is BranchEnded:
            values[4] = tuple(values[4])
    else:
        values[3] = tuple(values[3])
        if kind is StepEnded and len(values) > 13:
            values[13] = tuple(values[13])
    event: Event = kind(*values[1:])
    return event


@dataclass(frozen=True, slots=True)
class Message:
    """A task's events as they arrived from the worker, unpacked only when the driver
    records them. A batched map's events arrive faster than the driver records them, and
    the backlog waits on the queue: as event objects it took the driver's small-object
    memory from 71 to 139 MiB of arenas on a 30,000-item map (kept by the process after
    the backlog was gone); as one ``bytes`` per message it is a few large blocks."""

    data: bytes

    def events(self) -> list[Event]:
        return unpack(self.data)


def pack(events: list[Event]) -> bytes:
    """One task's events as one message of bytes."""
    return bytes(msgpack.packb([_wire(event) for event in events]))


def unpack(message: bytes) -> list[Event]:
    """The events of a message made by :func:`pack`."""
    return [_event(values) for values in msgpack.unpackb(message, strict_map_key=False)]
