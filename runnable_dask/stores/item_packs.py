"""Groups of a map's items held as their JSON, and what is known of each without reading it.

A finished map item's JSON is about 1.3 KB, most of it the same from item to item (key
names, step names, the parameters every item gets): a hundred items compressed together
with zlib take about 75 bytes an item, where each alone would still take 380. An
:class:`ItemPack` is such a group, made by the driver as items finish, or a span of a
run log read back from its file (the document itself, not a copy of each item). It knows
each item's status, whether a failure is recorded inside it and whether it had begun,
and the group's earliest start and latest end: what ``show``, ``failures()`` and the
run's summary ask of a big map, answered without reading every item again.
"""

from __future__ import annotations

import re
import zlib
from array import array
from functools import lru_cache
from itertools import accumulate, chain, pairwise

STATUSES = ("PROCESSING", "SUCCESS", "FAIL", "CREATED")
"""The statuses an item can have, by their code (the low two bits of :attr:`ItemPack.codes`)."""
FAILED_INSIDE = 4
"""Set in an item's code when a status ``FAIL`` appears anywhere in its JSON."""
BEGUN = 8
"""Set in an item's code when it ended or holds steps (one listed and not begun holds none)."""

STATUS = re.compile(rb'"status":"([A-Z]+)"')
"""A record's status; the first one in a branch's JSON is the branch's own (it comes
right after its name, and a quote inside a string is escaped)."""
START_TIME = re.compile(rb'"start_time":"([^"]+)"')
END_TIME = re.compile(rb'"end_time":"([^"]+)"')
"""Apart, each led by its literal text, which the search skips to: two searches of a
map of 100,000 items took 0.22 s, one for either name 0.34 s."""
FAILED = b'"status":"FAIL"'
CACHED = b'"cached_from":"'
CACHED_FROM = re.compile(rb'"cached_from":"([^"]+)"')
TASK = b'"step_type":"task"'
_NO_STEPS = b'"steps":{}'
_CODES = {status.encode(): code for code, status in enumerate(STATUSES)}
_LEVEL = 1
"""zlib's quickest level: a group of 100 items at 3-4 us an item; level 6 saved another
fifth of the size for twice the time."""


class ItemPack:
    """Some items of one map, by name, as JSON: compressed, or spans of a read document.

    A pack never changes; an item taken out of it to be updated (a retry, a resumed run)
    is held elsewhere from then on, and its copy here is no longer read.
    """

    __slots__ = (
        "_cached",
        "_codes",
        "_compressed",
        "_ends",
        "_name_ends",
        "_names",
        "_source",
        "_starts",
        "_times",
    )

    def __init__(
        self, names: list[str], source: bytes, starts: array[int], ends: array[int]
    ) -> None:
        # The names as one string: the map's dict holds each name already, and a second
        # string per item would cost as much as its compressed JSON.
        self._names = "".join(names)
        self._name_ends = array("I", accumulate(len(name) for name in names))
        self._source = source
        self._starts = starts
        self._ends = ends
        self._compressed = False
        self._codes: bytes | None = None
        self._times: tuple[str, str] | None = None
        self._cached = False

    @classmethod
    def compress(cls, names: list[str], items: list[bytes]) -> ItemPack:
        """Items that finished together, as one compressed block."""
        joined = b"".join(items)
        ends = array("I", accumulate(len(item) for item in items))
        starts = array("I", [0])
        starts.extend(ends[:-1])
        pack = cls(names, zlib.compress(joined, _LEVEL), starts, ends)
        pack._compressed = True
        pack._describe(joined)  # while the JSON is at hand
        pack._time(joined)
        return pack

    @classmethod
    def span(cls, names: list[str], document: bytes, offsets: list[list[int]]) -> ItemPack:
        """Items of a written document, each ``[start, end]`` in it; read lazily."""
        kind = "I" if offsets[-1][1] < 2**32 else "Q"
        starts = array(kind, [o[0] for o in offsets])
        ends = array(kind, [o[1] for o in offsets])
        return cls(names, document, starts, ends)

    @property
    def spanned(self) -> bool:
        """Whether the items are spans of a read document (not compressed)."""
        return not self._compressed

    def item(self, position: int) -> bytes:
        """The JSON of the item at ``position`` (in the order they were packed)."""
        return self._buffer()[self._starts[position] : self._ends[position]]

    def by_name(self) -> dict[str, bytes]:
        """Every item's JSON by name, from one read of the pack."""
        buffer = self._buffer()
        spans = zip(self._starts, self._ends, strict=True)
        return dict(zip(self.names(), [buffer[start:end] for start, end in spans], strict=True))

    def codes_by_name(self) -> dict[str, int]:
        """Every item's code (see :attr:`codes`) by name, without reading the items."""
        return dict(zip(self.names(), self.codes, strict=True))

    def names(self) -> list[str]:
        """The items' names, in the order they were packed."""
        names = self._names
        return [names[start:end] for start, end in pairwise(chain((0,), self._name_ends))]

    def failed_by_name(self) -> dict[str, bytes]:
        """The JSON of each item with a failure inside, by name; a pack with none is not
        read."""
        failed = [position for position, code in enumerate(self.codes) if code & FAILED_INSIDE]
        if not failed:
            return {}
        buffer = self._buffer()
        return {self.name(p): buffer[self._starts[p] : self._ends[p]] for p in failed}

    def name(self, position: int) -> str:
        """The name of the item at ``position``."""
        start = self._name_ends[position - 1] if position else 0
        return self._names[start : self._name_ends[position]]

    def position(self, name: str, hint: int = 0) -> int:
        """Where item ``name`` is (``hint`` is tried first: items are mostly asked for in
        the order they were packed)."""
        if hint < len(self._name_ends) and self.name(hint) == name:
            return hint
        return _positions(self)[name]

    @property
    def codes(self) -> bytes:
        """One byte per item: its status's index in :data:`STATUSES`, with
        :data:`FAILED_INSIDE` and :data:`BEGUN`."""
        if self._codes is None:
            self._describe(self._buffer())
        assert self._codes is not None
        return self._codes

    @property
    def times(self) -> tuple[str, str]:
        """The earliest start and latest end of the items' attempts ("" where none); ISO
        times in UTC, as recorded, compare as text. An item taken out keeps its earlier
        attempts in its record, so its times here stay within the run's."""
        if self._times is None:
            self._time(self._buffer())
        assert self._times is not None
        return self._times

    def cached(self) -> bool:
        """Whether any item came from the step cache (a hint: read the item to be sure)."""
        if self._codes is None:
            self._describe(self._buffer())
        return self._cached

    def cache_counts(self) -> tuple[int, list[bytes]]:
        """The items' task records, and the run each one's cached attempt came from, read
        from their JSON (a cached task's one attempt is its last: a hit is not run again)."""
        buffer, start, end = self._buffer(), self._starts[0], self._ends[-1]
        return buffer.count(TASK, start, end), CACHED_FROM.findall(buffer, start, end)

    def _buffer(self) -> bytes:
        return _inflated(self) if self._compressed else self._source

    def _describe(self, buffer: bytes) -> None:
        codes = bytearray()
        for start, end in zip(self._starts, self._ends, strict=True):
            found = STATUS.search(buffer, start, end)
            code = _CODES.get(found.group(1), 0) if found else 0
            if buffer.find(FAILED, start, end) >= 0:
                code |= FAILED_INSIDE
            if code:  # ended: begun, whatever it holds
                code |= BEGUN
            else:
                steps = buffer.find(b'"steps":', start, end)
                if steps >= 0 and not buffer.startswith(_NO_STEPS, steps):
                    code |= BEGUN
            codes.append(code)
        self._codes = bytes(codes)
        self._cached = buffer.find(CACHED, self._starts[0], self._ends[-1]) >= 0

    def _time(self, buffer: bytes) -> None:
        """Apart from the codes: the run's span is read from its top level when it can be
        (see :func:`runnable_dask.results.run_span`), and this search was 60% of both."""
        self._times = span_of(buffer, self._starts[0], self._ends[-1])


def span_of(data: bytes, start: int = 0, end: int | None = None) -> tuple[str, str]:
    """The earliest start and latest end time in ``data[start:end]`` ("" where none)."""
    stop = len(data) if end is None else end
    starts = START_TIME.findall(data, start, stop)
    ends = END_TIME.findall(data, start, stop)
    return (min(starts).decode() if starts else "", max(ends).decode() if ends else "")


@lru_cache(maxsize=64)
def _inflated(pack: ItemPack) -> bytes:
    """A compressed pack's JSON; the last 64 are kept (9 MB) for readers that ask item by
    item in the map's order, while a pack holds items in the order they finished, spread
    over the map on a cluster (a whole write reads each pack once: ``PackedBranches.raw``)."""
    return zlib.decompress(pack._source)


@lru_cache(maxsize=64)
def _positions(pack: ItemPack) -> dict[str, int]:
    """Where each of a pack's items is, by name, for the packs read last (a pack keeps
    its names as one string; searching them went through half a pack for every item
    read out of its packing order)."""
    return {name: position for position, name in enumerate(pack.names())}
