"""A map's branches kept as their JSON, so a map of a million items fits a small driver.

As pydantic objects, a finished map item (its branch, steps, attempts and parameter
records) took about 13 KB of the driver's memory; as the JSON the run log stores, about
1.3 KB; compressed a hundred at a time (:mod:`runnable_dask.stores.item_packs`), about
75 bytes. :class:`PackedBranches` is the dict a map step's ``branches`` is: a branch
still running is an object the recorder updates, a branch listed and not begun is
:data:`NOT_BEGUN`, a finished one is its JSON, then part of an :class:`ItemPack`; each
is read back into a :class:`BranchLog` when asked for (and not kept), so ``walk()``,
``step()`` and ``failures()`` work on it as on any run log. Written to a store, the JSON
goes out as it is (:func:`dump_run_log`): a write never serialises every item again.
"""

from __future__ import annotations

import contextlib
import json
import re
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from itertools import accumulate, islice
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, BinaryIO, Final, TypeVar, cast

from pydantic import BaseModel

from runnable_dask.stores.item_packs import (
    BEGUN,
    CACHED,
    CACHED_FROM,
    FAILED,
    STATUS,
    STATUSES,
    TASK,
    ItemPack,
    span_of,
)

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import BranchLog, RunLog, StepLog

Offsets = array
"""Where a map's branches are in a written document: start, end, start, end, ... (a
list of pairs took 120 bytes an item while the last write of a million items went on)."""

T = TypeVar("T")

GROUP = 100
"""Finished items compressed together: as small as a thousand would be (75 against 72
bytes an item), and one item read back costs a hundred's decompression (about 0.15 ms)."""
UNWRITTEN = 100 * GROUP
"""Items whose JSON is kept for the next write of what changed (about 13 MB): as many as
finish between two writes of a big map on a busy cluster (every 5-10 s, at 700-1,000
items a second). Read back from their packs instead, they made its writes of changes
cost twice as much (0.65 s against 0.27 s over 100,000 items). It is per map: big maps
running at once keep up to this each."""


class _NotBegun:
    """The value of a branch listed and not begun (one object for all of them)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_BEGUN"

    def __reduce__(self) -> str:
        return "NOT_BEGUN"  # unpickled as this module's one object


NOT_BEGUN: Final = _NotBegun()


class PackedBranches(dict[str, Any]):
    """Branches by internal name, in item order; finished ones held as JSON.

    It notes which branches were set or handed out to be updated, so that a write of
    what changed (:mod:`runnable_dask.stores.parts`) need not look at every item.
    """

    __slots__ = ("_cursor", "_fresh", "_times", "_touched", "_unwritten")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._touched: dict[str, None] = {}  # a dict: in the order they were touched
        self._times: tuple[str, str] | None = None
        self._fresh: list[str] = []
        """Items packed as JSON since the last group was compressed."""
        self._unwritten: OrderedDict[str, bytes] = OrderedDict()
        """The JSON of the items last compressed since they were touched (at most
        :data:`UNWRITTEN`), until a write of what changed takes it: read back from their
        pack, each cost a decompression."""
        self._cursor: tuple[ItemPack | None, int] = (None, 0)
        """The pack and position of the last item read from a pack: the next is tried
        first."""

    def pack(self, name: str) -> None:
        """Keep branch ``name`` as its JSON from now on (it will not change again); every
        :data:`GROUP` items packed are compressed together."""
        value = dict.__getitem__(self, name)
        if _is_held(value):
            return
        self[name] = dump_json(value)
        self._fresh.append(name)
        if len(self._fresh) >= GROUP:
            self._compress(self._fresh)
            self._fresh = []

    def compact(self) -> None:
        """Compress every item held as JSON not yet in a compressed pack (a run log read
        back, then resumed: its items spans of the document, or plain JSON)."""
        group: list[str] = []
        for name, value in dict.items(self):
            if isinstance(value, bytes) or (isinstance(value, ItemPack) and value.spanned):
                group.append(name)
                if len(group) == GROUP:
                    self._compress(group)
                    group = []
        if group:
            self._compress(group)
        self._fresh = []

    def _compress(self, names: list[str]) -> None:
        chosen: dict[str, bytes] = {}
        for name in names:
            value = dict.get(self, name)
            if isinstance(value, bytes):
                chosen[name] = value
            elif isinstance(value, ItemPack):
                chosen[name] = self._json(name, value)
        if not chosen:
            return
        pack = ItemPack.compress(list(chosen), list(chosen.values()))
        for name, data in chosen.items():
            if name in self._touched:
                self._unwritten[name] = data
            dict.__setitem__(self, name, pack)
        while len(self._unwritten) > UNWRITTEN:  # writes far apart: the oldest are read back
            self._unwritten.popitem(last=False)  # O(1), unlike a dict's first key

    def placeholders(self, names: list[str]) -> None:
        """Branches listed before any of them reports."""
        for name in names:
            if name not in self:
                self[name] = NOT_BEGUN

    def live(self, name: str) -> BranchLog | None:
        """The branch as an object the recorder may update (unpacked if it was packed)."""
        value = dict.get(self, name)
        if value is NOT_BEGUN:
            # An item's first report: its branch is made, not parsed.
            value = self[name] = _empty(name)
        elif isinstance(value, (bytes, ItemPack)):
            data = self._json(name, value)
            value = _empty(name) if data == empty_branch(name) else _branch(data)
            self[name] = value
        elif value is not None:
            self._touched[name] = None
        return value

    def stored_json(self, name: str) -> bytes | None:
        """What a write of changes stores for branch ``name``: its JSON if it is held
        packed, ``b""`` if it is listed and not begun, None while it is an object. One
        look at the branch: a write of a big map's changes asks this of every item."""
        unwritten = self._unwritten.pop(name, None)
        if unwritten is not None:  # begun: only touched items are kept here
            return unwritten
        value = dict.__getitem__(self, name)
        if value is NOT_BEGUN:
            return b""
        if isinstance(value, bytes):
            return b"" if value.endswith(_NOT_BEGUN_END) else value
        if isinstance(value, ItemPack):
            position = self._position(name, value)
            return value.item(position) if value.codes[position] & BEGUN else b""
        return None

    def written_whole(self) -> None:
        """Every branch was just serialised whole (a whole write, or a record that holds
        the map): the JSON kept for the next write of changes is let go (such a write
        reads it back from the packs, if it comes)."""
        self._unwritten.clear()

    def touched(self) -> list[str]:
        """The branches set or handed out for update since the last call, in that order;
        those still held as objects (they may change again) stay noted for the next."""
        names = list(self._touched)
        self._touched = {n: None for n in names if not _is_held(dict.get(self, n))}
        return names

    def __setitem__(self, name: str, value: Any) -> None:
        dict.__setitem__(self, name, value)
        self._touched[name] = None
        self._unwritten.pop(name, None)
        self._times = None

    def packed_times(self) -> tuple[str, str]:
        """The earliest start and latest end of the attempts in the packed branches
        ("" where there is none), kept until one changes: a pack's are known to it, the
        others' read from their JSON. ISO times in UTC, as recorded, compare as text."""
        if self._times is None:
            found: list[tuple[str, str]] = []
            loose: list[bytes] = []
            last = None
            for value in dict.values(self):
                if isinstance(value, ItemPack):
                    if value is not last:
                        found.append(value.times)
                        last = value
                elif isinstance(value, bytes):
                    loose.append(value)
            for at in range(0, len(loose), 1000):  # a thousand items per search: few calls
                found.append(span_of(b"".join(loose[at : at + 1000])))
            starts_ = [start for start, _ in found if start]
            ends_ = [end for _, end in found if end]
            self._times = (min(starts_, default=""), max(ends_, default=""))
        return self._times

    def raw(self) -> Iterator[tuple[str, bytes | BranchLog]]:
        """Names with their JSON, or the live object, in order (for writing)."""
        for name, value, packed in self._through_packs(ItemPack.by_name):
            if packed is not None:
                yield name, packed
            else:
                yield name, self._json(name, value) if _is_held(value) else value

    def _through_packs(
        self, read: Callable[[ItemPack], dict[str, T]]
    ) -> Iterator[tuple[str, Any, T | None]]:
        """Each branch in order with, for a packed one, what ``read`` gives for it from
        its pack (None if nothing).

        A pack holds the items that finished together, and on a cluster those are spread
        over the whole map: each pack is read once, when its first item comes, and let go
        after its last. Asking a pack item by item read it again for nearly every item:
        2 s of a 10,000-item map's last write; and looking up each item's place among a
        pack's names, a tenth of the driver's time on a 30,000-item map (its summary's
        search for failures)."""
        left = Counter(id(v) for v in dict.values(self) if isinstance(v, ItemPack))
        opened: dict[int, dict[str, T]] = {}
        for name, value in dict.items(self):
            if not isinstance(value, ItemPack):
                yield name, value, None
                continue
            key = id(value)
            found = opened.get(key)
            if found is None:
                found = opened[key] = read(value)
            yield name, value, found.get(name)
            left[key] -= 1
            if not left[key]:
                del opened[key]

    def live_values(self) -> Iterator[BranchLog]:
        """The branches held as objects (begun and not yet ended, in the driver)."""
        return (value for value in dict.values(self) if not _is_held(value))

    def unfinished(self) -> list[str]:
        """The branches held as JSON that had begun and not ended (a run stopped while
        they ran): the recorder closes their running steps."""
        found = []
        for name, value, code in self._through_packs(ItemPack.codes_by_name):
            if isinstance(value, bytes):
                at = value.find(b'"steps":')  # the branch's own steps come first
                if b'"status":"PROCESSING"' in value[:at] and value[at + 8 : at + 10] != b"{}":
                    found.append(name)
            elif code is not None and code & BEGUN and STATUSES[code & 3] == "PROCESSING":
                found.append(name)
        return found

    def any_cached(self) -> bool:
        """Whether an item held as JSON came from the step cache (a hint: read it to be
        sure); the live ones are the caller's to look at."""
        last = None
        for value in dict.values(self):
            if isinstance(value, bytes):
                if CACHED in value:
                    return True
            elif isinstance(value, ItemPack) and value is not last:
                last = value
                if value.cached():
                    return True
        return False

    def cache_counts(self) -> tuple[int, list[str]]:
        """The task records of the items held as JSON, and the runs their cached attempts
        came from (one entry per cached task), without reading the items into objects: a
        map of 100,000 cached items took 10 s and 1 GB to count that way. The live ones
        are the caller's to count."""
        tasks, sources, seen = 0, [], set()
        for value in dict.values(self):
            if isinstance(value, bytes):
                tasks += value.count(TASK)
                sources += CACHED_FROM.findall(value)
            elif isinstance(value, ItemPack) and id(value) not in seen:
                seen.add(id(value))
                count, found = value.cache_counts()
                tasks += count
                sources += found
        return tasks, [source.decode() for source in sources]

    def __getitem__(self, name: str) -> BranchLog:
        return self._read(name, dict.__getitem__(self, name))

    def get(self, name: str, default: Any = None) -> Any:
        if name not in self:
            return default
        return self._read(name, dict.__getitem__(self, name))

    def values(self) -> Iterator[BranchLog]:  # type: ignore[override]
        return (self._read(name, value) for name, value in dict.items(self))

    def items(self) -> Iterator[tuple[str, BranchLog]]:  # type: ignore[override]
        return ((name, self._read(name, value)) for name, value in dict.items(self))

    def setdefault(self, name: str, default: BranchLog) -> BranchLog:  # type: ignore[override]
        found = self.live(name)
        if found is None:
            self[name] = default
            return default
        return found

    def statuses(self) -> Iterator[tuple[str, str]]:
        """(name, status) of each branch, read without unpacking it."""
        for name, value, code in self._through_packs(ItemPack.codes_by_name):
            if code is not None:
                yield name, STATUSES[code & 3]
            elif isinstance(value, bytes):
                found = STATUS.search(value)
                yield name, found.group(1).decode() if found else "PROCESSING"
            elif value is NOT_BEGUN:
                yield name, "PROCESSING"
            else:
                yield name, value.status

    def with_failures(self) -> Iterator[BranchLog]:
        """The branches with a failed step or a failed status anywhere inside; the
        others are not unpacked."""
        for _, value, failed in self._through_packs(ItemPack.failed_by_name):
            if isinstance(value, ItemPack):
                if failed is not None:
                    yield _branch(failed)
            elif isinstance(value, bytes):
                if FAILED in value:
                    yield _branch(value)
            elif value is not NOT_BEGUN:
                yield value

    def _position(self, name: str, pack: ItemPack) -> int:
        """Where ``name`` is in ``pack``; the item after the last one asked for is
        tried first."""
        last, position = self._cursor
        position = pack.position(name, position + 1 if pack is last else 0)
        self._cursor = (pack, position)
        return position

    def _json(self, name: str, value: Any) -> bytes:
        """The JSON of a branch held packed."""
        if isinstance(value, ItemPack):
            return value.item(self._position(name, value))
        if value is NOT_BEGUN:
            return empty_branch(name)
        return cast(bytes, value)

    def _read(self, name: str, value: Any) -> Any:
        return _branch(self._json(name, value)) if _is_held(value) else value

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
        copied._fresh = list(self._fresh)
        copied._unwritten = OrderedDict(self._unwritten)
        return copied


def _is_held(value: Any) -> bool:
    """Whether a branch's value is held packed (JSON, a pack, or not begun)."""
    return isinstance(value, (bytes, ItemPack)) or value is NOT_BEGUN


_NOT_BEGUN_END = b',"status":"PROCESSING","steps":{},"parameters":{}}'
"""How a branch listed and not begun ends (only its name comes before)."""


def empty_branch(name: str) -> bytes:
    """The JSON of a branch listed and not begun."""
    return b'{"internal_name":' + json_string(name) + _NOT_BEGUN_END


def _branch(data: bytes) -> BranchLog:
    from runnable_dask.stores.runlog import BranchLog

    return BranchLog.model_validate_json(data)


def _empty(name: str) -> BranchLog:
    from runnable_dask.stores.runlog import BranchLog

    return BranchLog(internal_name=name)


Index = dict[str, Any]
"""Where each packed map's branches are in a written document: ``{"size": bytes,
"maps": {map internal name: [[start, end] of each branch's JSON]}}`` as read, the
pairs as :data:`Offsets` as written (:func:`index_json` writes them as pairs)."""

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


def index_json(index: Index) -> bytes:
    """The index written by :func:`dump_run_log` or :func:`write_run_log` as JSON."""
    maps = []
    for name, flat in index["maps"].items():
        pairs = ",".join(f"[{flat[at]},{flat[at + 1]}]" for at in range(0, len(flat), 2))
        maps.append(f"{json.dumps(name)}:[{pairs}]")
    return f'{{"size":{index["size"]},"maps":{{{",".join(maps)}}}}}'.encode()


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
        head = data[done:at] + b"{"
        done = at + len(mark)
        position += len(head)
        yield head
        offsets = maps[owner.internal_name] = array("Q")
        branches_json = branches.raw()
        comma = b""
        while chunk := list(islice(branches_json, _PIECE)):
            pieces = []  # key, value, key, value, ...: each value ends where its key does
            for name, value in chunk:
                pieces.append(comma + json_string(name) + b":")
                pieces.append(value if isinstance(value, bytes) else dump_json(value))
                comma = b","
            ends = array("Q", accumulate(map(len, pieces), initial=position))
            offsets.extend(ends[1:])  # each value's start (its key's end), then its end
            position = ends[-1]
            yield b"".join(pieces)
        position += 1
        yield b"}"
        branches.written_whole()
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
        key = json.dumps(_name(data, first)).encode()
        trunk += data[done : first - len(key) - 2] + b"{}"  # the object, its key, its colon
        done = offsets[-1][1] + 1
    trunk += data[done:]
    run_log = RunLog.model_validate_json(bytes(trunk))
    for owner, offsets in spans:
        packed = PackedBranches()
        for at in range(0, len(offsets), GROUP):
            group = offsets[at : at + GROUP]
            names = [_name(data, start) for start, _ in group]
            pack = ItemPack.span(names, data, group)
            for name in names:
                dict.__setitem__(packed, name, pack)
        run_log.step(owner).branches = packed
    return run_log


def json_string(text: str) -> bytes:
    """``text`` as ``json.dumps`` writes it, by the C encoder that it calls: in half its
    time (a write of a big map names every item)."""
    return encode_basestring_ascii(text).encode()


_NAME = re.compile(rb'\{"internal_name":("(?:[^"\\]|\\.)*")')
_NAME_KEY = b'{"internal_name":"'


def _name(data: bytes, start: int = 0) -> str:
    """The internal name of the branch whose JSON begins at ``start`` in ``data``."""
    if data.startswith(_NAME_KEY, start):  # the common case, without a regex
        begin = start + len(_NAME_KEY)
        raw = data[begin : data.find(b'"', begin)]
        if b"\\" not in raw:
            return raw.decode()
    found = _NAME.match(data, start)
    if found is None:
        raise ValueError("a packed branch without its internal name")
    quoted = found.group(1)
    return quoted[1:-1].decode() if b"\\" not in quoted else str(json.loads(quoted))
