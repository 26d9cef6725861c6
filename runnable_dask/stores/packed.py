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

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import BranchLog, RunLog

SPLICE = "runnable-dask:splice"
"""Serialisation context: packed branches become markers that :func:`dump_run_log` fills."""


class PackedBranches(dict[str, Any]):
    """Branches by internal name, in item order; finished ones held as JSON bytes."""

    def pack(self, name: str) -> None:
        """Keep branch ``name`` as its JSON from now on (it will not change again)."""
        value = dict.__getitem__(self, name)
        if not isinstance(value, bytes):
            dict.__setitem__(self, name, type(value).__pydantic_serializer__.to_json(value))

    def placeholders(self, names: list[str]) -> None:
        """Branches listed before any of them reports: each as the JSON of an empty one."""
        for name in names:
            if name not in self:
                dict.__setitem__(self, name, _empty(name))

    def live(self, name: str) -> BranchLog | None:
        """The branch as an object the recorder may update (unpacked if it was packed)."""
        value = dict.get(self, name)
        if isinstance(value, bytes):
            value = _branch(value)
            dict.__setitem__(self, name, value)
        return value

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
            dict.__setitem__(self, name, default)
            return default
        return found

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
        return copied


def _empty(name: str) -> bytes:
    return (
        b'{"internal_name":' + json.dumps(name).encode() + b',"status":"PROCESSING",'
        b'"steps":{},"parameters":{}}'
    )


def _branch(data: bytes) -> BranchLog:
    from runnable_dask.stores.runlog import BranchLog

    return BranchLog.model_validate_json(data)


def _unpacked(value: Any) -> Any:
    return _branch(value) if isinstance(value, bytes) else value


def marker(branches: PackedBranches) -> str:
    """What a packed map's branches serialise to in a write: replaced by their JSON."""
    return f"{SPLICE}:{id(branches)}"


def dump_run_log(run_log: RunLog) -> bytes:
    """The run log's JSON (runnable's layout), packed branches copied in as they are."""
    spliced: dict[str, PackedBranches] = {}
    context = {SPLICE: spliced}
    data = run_log.model_dump_json(context=context).encode()
    done = 0
    while done < len(spliced):  # a live branch may hold a map of its own: spliced next
        key, branches = list(spliced.items())[done]
        done += 1
        parts = []
        for name, value in branches.raw():
            packed = (
                value
                if isinstance(value, bytes)
                else type(value).__pydantic_serializer__.to_json(value, context=context)
            )
            parts.append(json.dumps(name).encode() + b":" + packed)
        data = data.replace(json.dumps(key).encode(), b"{" + b",".join(parts) + b"}", 1)
    return data
