"""A map's branches kept as their JSON, so a map of 100,000 items fits a small driver.

As pydantic objects, a finished map item (its branch, steps, attempts and parameter
records) took about 13 KB of the driver's memory; as the JSON the run log stores, about
1 KB. :class:`PackedBranches` is the dict a map step's ``branches`` is: a branch still
running is an object the recorder updates, a finished one is its JSON, read back into a
:class:`BranchLog` each time it is asked for (and not kept), so ``walk()``, ``step()`` and
``failures()`` work on it as on any run log. Written to a store, the JSON goes out as it
is (:func:`dump_run_log`): a write no longer serialises every item again.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from pydantic import BaseModel

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import BranchLog, RunLog, StepLog

Offsets = list[tuple[int, int]]


class PackedBranches(dict[str, Any]):
    """Branches by internal name, in item order; finished ones held as JSON bytes.

    It notes which branches were set or handed out to be updated, so that a write of
    what changed (:mod:`runnable_dask.stores.parts`) need not look at every item.
    """

    __slots__ = ("_times", "_touched")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._touched: dict[str, None] = {}  # a dict: in the order they were touched
        self._times: tuple[str, str] | None = None

    def pack(self, name: str) -> None:
        """Keep branch ``name`` as its JSON from now on (it will not change again)."""
        value = dict.__getitem__(self, name)
        if not isinstance(value, bytes):
            self[name] = dump_json(value)

    def placeholders(self, names: list[str]) -> None:
        """Branches listed before any of them reports: each as the JSON of an empty one."""
        for name in names:
            if name not in self:
                self[name] = empty_branch(name)

    def live(self, name: str) -> BranchLog | None:
        """The branch as an object the recorder may update (unpacked if it was packed)."""
        value = dict.get(self, name)
        if isinstance(value, bytes):
            # An item's first report finds its placeholder: made, not parsed (a third
            # of the time).
            value = _empty(name) if value == empty_branch(name) else _branch(value)
            self[name] = value
        elif value is not None:
            self._touched[name] = None
        return value

    def touched(self) -> list[str]:
        """The branches set or handed out for update since the last call, in that order;
        those still held as objects (they may change again) stay noted for the next."""
        names = list(self._touched)
        self._touched = {n: None for n in names if not isinstance(dict.get(self, n), bytes)}
        return names

    def __setitem__(self, name: str, value: Any) -> None:
        dict.__setitem__(self, name, value)
        self._touched[name] = None
        self._times = None

    def packed_times(self) -> tuple[str, str]:
        """The earliest start and latest end of the attempts in the packed branches
        ("" where there is none), from their JSON in one pass, kept until one changes.
        ISO times in UTC, as recorded, compare as text."""
        if self._times is None:
            starts: list[bytes] = []
            ends: list[bytes] = []
            packed = [v for v in dict.values(self) if isinstance(v, bytes)]
            for at in range(0, len(packed), 1000):  # a thousand items per search: few calls
                for kind, stamp in _TIME.findall(b"".join(packed[at : at + 1000])):
                    (starts if kind == b"start" else ends).append(stamp)
            self._times = (
                min(starts).decode() if starts else "",
                max(ends).decode() if ends else "",
            )
        return self._times

    def raw(self) -> Iterator[tuple[str, bytes | BranchLog]]:
        """Names with packed JSON or live objects, as held (for writing)."""
        return iter(dict.items(self))

    def __getitem__(self, name: str) -> BranchLog:
        return _unpacked(dict.__getitem__(self, name))

    def get(self, name: str, default: Any = None) -> Any:
        value = dict.get(self, name, default)
        return _unpacked(value) if isinstance(value, bytes) else value

    def values(self) -> Iterator[BranchLog]:  # type: ignore[override]
        return (_unpacked(value) for value in dict.values(self))

    def items(self) -> Iterator[tuple[str, BranchLog]]:  # type: ignore[override]
        return ((name, _unpacked(value)) for name, value in dict.items(self))

    def setdefault(self, name: str, default: BranchLog) -> BranchLog:  # type: ignore[override]
        found = self.live(name)
        if found is None:
            self[name] = default
            return default
        return found

    def statuses(self) -> Iterator[tuple[str, str]]:
        """(name, status) of each branch, read without unpacking it."""
        for name, value in dict.items(self):
            if isinstance(value, bytes):
                found = _STATUS.search(value)
                yield name, found.group(1).decode() if found else "PROCESSING"
            else:
                yield name, value.status

    def with_failures(self) -> Iterator[BranchLog]:
        """The branches with a failed step or a failed status anywhere inside; the
        others are not unpacked."""
        for value in dict.values(self):
            if not isinstance(value, bytes):
                yield value
            elif _FAILED in value:
                yield _branch(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and dict(self.items()) == dict(other.items())

    __hash__ = None

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return PackedBranches, (), None, None, iter(dict.items(self))

    def __copy__(self) -> PackedBranches:
        copied = PackedBranches()
        dict.update(copied, dict.items(self))
        copied._touched = dict(self._touched)
        return copied


def empty_branch(name: str) -> bytes:
    """The JSON of a branch listed and not begun."""
    return (
        b'{"internal_name":' + json.dumps(name).encode() + b',"status":"PROCESSING",'
        b'"steps":{},"parameters":{}}'
    )


def _branch(data: bytes) -> BranchLog:
    from runnable_dask.stores.runlog import BranchLog

    return BranchLog.model_validate_json(data)


def _empty(name: str) -> BranchLog:
    from runnable_dask.stores.runlog import BranchLog

    return BranchLog(internal_name=name)


def _unpacked(value: Any) -> Any:
    return _branch(value) if isinstance(value, bytes) else value


Index = dict[str, Any]
"""Where each packed map's branches are in a written document: ``{"size": bytes,
"maps": {map internal name: [[start, end] of each branch's JSON]}}``."""

_MARK = "runnable-dask:packed"
"""The key of the one-entry dict that stands for a packed map's branches while pydantic
serialises the rest of the log (replaced by the branches' JSON right after)."""


def dump_run_log(run_log: RunLog) -> tuple[bytes, Index]:
    """The run log's JSON (runnable's layout), packed branches copied in as they are,
    and where they are in it (so a reader can skip them, see :func:`load_run_log`)."""
    maps: dict[str, Offsets] = {}
    data = b"".join(_pieces(run_log, run_log.steps, maps))
    return data, {"size": len(data), "maps": maps}


def write_run_log(run_log: RunLog, handle: BinaryIO) -> Index:
    """Write :func:`dump_run_log`'s document to ``handle`` piece by piece: a map of
    100,000 items is never one 140 MB ``bytes`` in the driver (nor two, with the copy
    that joining it made)."""
    maps: dict[str, Offsets] = {}
    size = 0
    for piece in _pieces(run_log, run_log.steps, maps):
        handle.write(piece)
        size += len(piece)
    return {"size": size, "maps": maps}


def dump_json(model: BaseModel) -> bytes:
    """Any record of the log as its JSON, the packed maps inside it copied in."""
    return b"".join(_pieces(model, _steps_of(model), {}))


@contextlib.contextmanager
def unpacked(model: BaseModel) -> Iterator[None]:
    """For the time of a pydantic dump of ``model``: its packed maps as plain dicts of
    branches read back from their JSON (a dump through pydantic is rare and small)."""
    owners = packed_maps(_steps_of(model))
    held = [cast(PackedBranches, owner.branches) for owner in owners]
    try:
        for owner, branches in zip(owners, held, strict=True):
            owner.branches = {
                name: _branch(value if isinstance(value, bytes) else dump_json(value))
                for name, value in branches.raw()
            }
        yield
    finally:
        for owner, branches in zip(owners, held, strict=True):
            owner.branches = branches


def _steps_of(model: BaseModel) -> dict[str, StepLog]:
    """The steps a record holds: a run's or a branch's, or a step itself."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, dict):
        return steps
    return {getattr(model, "internal_name", ""): cast("StepLog", model)}


def packed_maps(steps: dict[str, StepLog]) -> list[StepLog]:
    """The map steps among ``steps`` and in their plain branches, at any depth, whose
    branches are packed, in document order; not those inside packed branches."""
    found = []
    pending = list(reversed(steps.values()))
    while pending:
        step = pending.pop()
        branches = step.branches
        if isinstance(branches, PackedBranches):
            found.append(step)
        elif branches:
            children = [s for b in branches.values() for s in b.steps.values()]
            pending.extend(reversed(children))
    return found


def _pieces(
    model: BaseModel, steps: dict[str, StepLog], maps: dict[str, Offsets]
) -> Iterator[bytes]:
    """``model``'s JSON in pieces: serialised by pydantic alone (no Python called per
    record), each packed map's branches swapped for a marker while it runs, then the
    branches' JSON spliced in, a thousand at a time. ``maps`` gets where each map's
    branches are."""
    owners = packed_maps(steps)
    if not owners:
        yield bytes(model.__pydantic_serializer__.to_json(model))
        return
    from runnable_dask.stores.runlog import BranchLog

    held = [cast(PackedBranches, owner.branches) for owner in owners]
    empty = BranchLog(internal_name="")
    markers = [
        b'{"' + f"{_MARK}:{number}".encode() + b'":' + dump_json(empty) + b"}"
        for number in range(len(owners))
    ]
    try:
        for number, owner in enumerate(owners):
            owner.branches = {f"{_MARK}:{number}": empty}
        data = bytes(model.__pydantic_serializer__.to_json(model))
    finally:
        for owner, branches in zip(owners, held, strict=True):
            owner.branches = branches
    position = 0  # of the next piece in the document
    done = 0
    for owner, branches, mark in zip(owners, held, markers, strict=True):
        at = data.index(mark, done)
        out = bytearray(data[done:at])
        done = at + len(mark)
        offsets = maps[owner.internal_name] = []
        out += b"{"
        for index, (name, value) in enumerate(branches.raw()):
            out += (b',"' if index else b'"') + json.dumps(name).encode()[1:] + b":"
            start = position + len(out)
            out += value if isinstance(value, bytes) else dump_json(value)
            offsets.append((start, position + len(out)))
            if index % _PIECE == _PIECE - 1:
                position += len(out)
                yield bytes(out)
                out = bytearray()
        out += b"}"
        position += len(out)
        yield bytes(out)
    yield data[done:]


_PIECE = 1000
"""Branches per piece of a written document: few writes, and no piece of any size."""


def load_run_log(data: bytes, index: Index | None) -> RunLog:
    """A written run log, each packed map's branches kept packed (not parsed) when the
    index matches the document; otherwise parsed whole."""
    from runnable_dask.stores.runlog import RunLog

    maps = index.get("maps", {}) if index and index.get("size") == len(data) else {}
    spans = [(name, offsets) for name, offsets in maps.items() if offsets]
    if not spans or not all(data[o[0][0] : o[0][0] + 17] == b'{"internal_name":' for _, o in spans):
        return RunLog.model_validate_json(data)
    trunk = bytearray()
    done = 0
    for _, offsets in sorted(spans, key=lambda span: span[1][0][0]):
        first = offsets[0][0]
        key = json.dumps(_name(data[first : first + 4096])).encode()
        trunk += data[done : first - len(key) - 2] + b"{}"  # the object, its key, its colon
        done = offsets[-1][1] + 1
    trunk += data[done:]
    run_log = RunLog.model_validate_json(bytes(trunk))
    for owner, offsets in spans:
        packed = PackedBranches()
        for start, end in offsets:
            value = data[start:end]
            dict.__setitem__(packed, _name(value), value)
        run_log.step(owner).branches = packed
    return run_log


_NAME = re.compile(rb'\{"internal_name":("(?:[^"\\]|\\.)*")')
_NAME_KEY = b'{"internal_name":"'
_STATUS = re.compile(rb'"status":"([A-Z]+)"')
_TIME = re.compile(rb'"(start|end)_time":"([^"]+)"')
_FAILED = b'"status":"FAIL"'


def _name(value: bytes) -> str:
    if value.startswith(_NAME_KEY):  # the common case, without a regex
        raw = value[len(_NAME_KEY) : value.find(b'"', len(_NAME_KEY))]
        if b"\\" not in raw:
            return raw.decode()
    found = _NAME.match(value)
    if found is None:
        raise ValueError("a packed branch without its internal name")
    quoted = found.group(1)
    return quoted[1:-1].decode() if b"\\" not in quoted else str(json.loads(quoted))
