"""The step cache on disk or in an object store: entries by key, blobs by content.

Layout under the cache location (any fsspec URL; by default ``<catalog>/.cache``)::

    packs/<begun>-<pid>-<id>.jsonl  on a local folder: the entries one process stored in
                                    one run, a line each (``<key> <entry as JSON>``)
    entries/<key>.json              on an object store: one file per entry
    blobs/<sha256>                  pickled values, put files, logs, executed notebooks

Why packs: creating a file cost 0.1-0.25 ms of kernel time here, as much as a whole
trivial step, so a run of 3000 cached steps paid more for its entry files than for its
steps; appending a line to a file the process holds open is one ``write`` call. An
object store has no append, so there each entry is an object of its own (its put is
whole by itself); entries of either kind are read from any location.

A blob's name is its content's digest, so equal content is stored once, and a blob is
written before any entry names it. Nothing is read half-written: a pack's line is one
``write`` of a file only its process appends to, and a reader ignores a last line without
its newline; other files are written through a temporary file and ``os.replace``.
Readers check what they read (JSON that parses and names its key, blobs whose digest
matches) and treat anything else as a missing entry. A key stored twice (two runs
missed it at once) is read from its newest place that reads back whole.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from pydantic_core import from_json, to_json

from runnable_dask.exceptions import RunnableDaskError

ENTRIES = "entries"
PACKS = "packs"
BLOBS = "blobs"
KEY_LENGTH = 64  # a SHA-256 in hex

Place = tuple[str, int, int]
"""Where an entry is stored: a file, and the offset and length of its JSON (a length of
-1: the whole file)."""


class Index:
    """Where each stored entry is (its places, oldest first), and the content of the
    packs as read to index them: a hit then reads no file for its entry."""

    __slots__ = ("mine", "packs", "places")

    def __init__(self) -> None:
        self.places: dict[str, list[Place]] = {}
        self.packs: dict[str, bytes] = {}
        self.mine: dict[str, bytes] = {}
        """Entries this process stored since, as stored."""

    def add(self, key: str, place: Place) -> None:
        self.places.setdefault(key, []).append(place)


class CorruptEntryError(RunnableDaskError):
    """An entry or a blob it names cannot be read back as written."""


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """One entry as ``runnable-dask cache list`` shows it."""

    key: str
    step: str
    name: str
    run_id: str
    created: datetime | None
    size: int


@dataclass(frozen=True, slots=True)
class CacheStore:
    """The cache at ``location``; cheap to build, so tasks make one each."""

    location: str

    @property
    def _fs_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, base = _filesystem(self.location)
        return fs, base.rstrip("/")

    def index(self) -> Index:
        """Where each stored entry is: a listing of each folder and a read of each pack
        (instead of a read per key)."""
        fs, root = self._fs_root
        found = Index()
        for path in _listing(fs, f"{root}/{ENTRIES}"):
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".json"):
                found.add(name.removesuffix(".json"), (path, 0, -1))
        for path in sorted(_listing(fs, f"{root}/{PACKS}")):  # named by when begun
            data = _read(fs, path) if path.endswith(".jsonl") else None
            if data:
                found.packs[path] = data
                for key, offset, length in _lines(data):
                    found.add(key, (path, offset, length))
        return found

    def read_entry(self, key: str, index: Index) -> dict[str, Any] | None:
        """The entry for ``key`` from the newest of its places that reads back whole;
        None if there is none (any more); CorruptEntryError if none reads back."""
        problem: CorruptEntryError | None = None
        if key in index.mine:
            return _entry(key, index.mine[key])
        places = index.places.get(key)
        if not places:
            return None
        fs, _ = self._fs_root
        for path, offset, length in reversed(places):
            pack = index.packs.get(path, b"")
            if length >= 0 and offset + length <= len(pack):  # appended before indexing
                data: bytes | None = pack[offset : offset + length]
            else:
                data = _read(fs, path, offset, length)
            if data is None:
                continue
            try:
                return _entry(key, data)
            except CorruptEntryError as exc:
                problem = problem or exc
        if problem is not None:
            raise problem
        return None

    def write_entries(self, entries: list[Encoded]) -> None:
        """Store encoded entries (their blobs must be stored already), on a local folder
        in one write per run."""
        fs, root = self._fs_root
        if isinstance(fs, LocalFileSystem):
            runs: dict[str, list[bytes]] = {}
            for entry in entries:
                line = b"%s %s\n" % (entry.key.encode("ascii"), entry.text)
                runs.setdefault(entry.run_id, []).append(line)
            for run_id, lines in runs.items():
                _PACKS.append(root, run_id, b"".join(lines))
        else:  # an object store's put is whole; fsspec puts several at once where it can
            fs.pipe({f"{root}/{ENTRIES}/{entry.key}.json": entry.text for entry in entries})

    def put_blob(self, data: bytes, replace: bool = False, digest: str = "") -> str:
        """Store ``data`` under its digest (computed unless given), unless it is there
        already (``replace``: even then, over a damaged copy); return the digest."""
        digest = digest or hashlib.sha256(data).hexdigest()
        fs, root = self._fs_root
        path = f"{root}/{BLOBS}/{digest}"
        if replace or not _exists(fs, path):
            _write(fs, path, data)
        return digest

    def blob(self, digest: str) -> bytes:
        """A blob's content, checked against its name."""
        fs, root = self._fs_root
        data = _read(fs, f"{root}/{BLOBS}/{digest}")
        if data is None:
            raise CorruptEntryError(f"blob {digest[:12]} is missing")
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptEntryError(f"blob {digest[:12]} does not match its digest")
        return data

    def entries(self) -> list[EntrySummary]:
        """Every entry, newest first (unreadable ones are listed as such)."""
        found = []
        index = self.index()
        for key in index.places:
            try:
                entry = self.read_entry(key, index) or {}
            except CorruptEntryError:
                entry = {"step": "(unreadable)"}
            found.append(
                EntrySummary(
                    key=key,
                    step=str(entry.get("step", "")),
                    name=str(entry.get("name", "")),
                    run_id=str(entry.get("run_id", "")),
                    created=_parse_time(entry.get("created")),
                    size=int(entry.get("size", 0)),
                )
            )
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        return sorted(found, key=lambda e: e.created or oldest, reverse=True)

    def remove(self, keys: list[str]) -> int:
        """Remove entries, then every blob no remaining entry names; return blobs removed.

        A run storing entries at the same moment may lose a blob it just wrote (its entry
        then reads as corrupt) or, if its pack held a removed entry, the entries it
        appends meanwhile: those steps run again next time.
        """
        fs, root = self._fs_root
        doomed = set(keys)
        index = self.index()
        packs = set()
        for key in doomed:
            for path, _, length in index.places.get(key, []):
                if length < 0:
                    _remove(fs, path)
                else:
                    packs.add(path)
        for path in packs:
            _drop_lines(fs, path, doomed)
        named: set[str] = set()
        index = self.index()
        for key in index.places:
            try:
                named.update(blob_digests(self.read_entry(key, index) or {}))
            except CorruptEntryError:
                continue
        removed = 0
        for path in _listing(fs, f"{root}/{BLOBS}"):
            if path.rsplit("/", 1)[-1] not in named:
                _remove(fs, path)
                removed += 1
        return removed


class Encoded(NamedTuple):
    """An entry as stored: its key, the run that made it and its JSON text. A tuple: made
    for every cached step, and a frozen dataclass took three times longer."""

    key: str
    run_id: str
    text: bytes


def encode(entry: dict[str, Any]) -> Encoded:
    """An entry, ready to store: the JSON ``json.dumps`` would give (compact, UTF-8, NaN
    and Infinity as such), made by pydantic's serialiser in a tenth of the time."""
    return Encoded(entry["key"], entry["run_id"], to_json(entry, inf_nan_mode="constants"))


def blob_digests(entry: dict[str, Any]) -> set[str]:
    """Every blob an entry names."""
    digests = {o["blob"] for o in entry.get("outputs", {}).values() if "blob" in o}
    digests.update(f["blob"] for f in entry.get("files", []))
    digests.update(entry[name] for name in ("log", "notebook") if entry.get(name))
    return digests


class _Packs:
    """The packs this process appends to: one per cache and run, opened on its first
    entry and kept open (the oldest closed beyond :attr:`KEPT`). Appending takes no lock:
    each line is one ``write`` call on a file opened to append, which the kernel keeps
    whole (a lock held across that call made the run's other threads queue behind it).
    """

    KEPT = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[int, str, str], io.FileIO] = {}

    def append(self, root: str, run_id: str, lines: bytes) -> None:
        which = (os.getpid(), root, run_id)  # a forked child opens packs of its own
        pack = self._open.get(which) or self._begin(which)
        written = pack.write(lines)
        if written != len(lines):  # a short line would join the next: begin another pack
            with self._lock:
                self._open.pop(which, None)
            raise OSError(f"wrote {written} of {len(lines)} bytes to {pack.name}")

    def _begin(self, which: tuple[int, str, str]) -> io.FileIO:
        with self._lock:
            pack = self._open.get(which)
            if pack is not None:  # another thread began it meanwhile
                return pack
            begun = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            path = f"{which[1]}/{PACKS}/{begun}-{which[0]}-{secrets.token_hex(4)}.jsonl"
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
            try:
                fd = os.open(path, flags, 0o644)
            except FileNotFoundError:  # the cache's first pack
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, flags, 0o644)
            pack = self._open[which] = open(fd, "ab", buffering=0, closefd=True)  # noqa: SIM115
            while len(self._open) > self.KEPT:  # a write still to come fails, not misplaces
                self._open.pop(next(iter(self._open))).close()
            return pack


_PACKS = _Packs()


def _lines(data: bytes) -> list[Place]:
    """Each whole line of a pack: its key, and its JSON's offset and length. A last line
    without its newline is being written (or was cut short): it is not there yet."""
    found = []
    start = 0
    end = data.find(b"\n")
    while end >= 0:
        if end - start > KEY_LENGTH + 1 and data[start + KEY_LENGTH] == 0x20:  # b" "
            key = data[start : start + KEY_LENGTH].decode("ascii", "replace")
            found.append((key, start + KEY_LENGTH + 1, end - start - KEY_LENGTH - 1))
        start = end + 1
        end = data.find(b"\n", start)
    return found


def _entry(key: str, data: bytes) -> dict[str, Any]:
    try:  # pydantic's parser: a third of ``json.loads``'s time, which sniffs bytes' encoding
        entry = from_json(data)
    except ValueError as exc:
        raise CorruptEntryError(f"entry {key[:12]} is not valid JSON ({exc})") from None
    if not isinstance(entry, dict) or entry.get("key") != key:
        raise CorruptEntryError(f"entry {key[:12]} does not describe key {key[:12]}")
    return entry


def _drop_lines(fs: fsspec.AbstractFileSystem, path: str, keys: set[str]) -> None:
    """Rewrite a pack without the entries of ``keys`` (remove it if none is left)."""
    data = _read(fs, path)
    if data is None:
        return
    kept = b"".join(
        data[offset - KEY_LENGTH - 1 : offset + length + 1]
        for key, offset, length in _lines(data)
        if key not in keys
    )
    if kept:
        _write(fs, path, kept)
    else:
        _remove(fs, path)


@functools.lru_cache(maxsize=16)
def _filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(location)


def _listing(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    """The files of a folder (not the temporary ones, whose names begin with a dot)."""
    try:
        if isinstance(fs, LocalFileSystem):  # without fsspec's per-file work
            return [f"{folder}/{n}" for n in os.listdir(folder) if not n.startswith(".")]
        return [p for p in fs.ls(folder, detail=False) if not p.rsplit("/", 1)[-1].startswith(".")]
    except FileNotFoundError:
        return []


def _exists(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    return os.path.exists(path) if isinstance(fs, LocalFileSystem) else fs.exists(path)


def _read(
    fs: fsspec.AbstractFileSystem, path: str, offset: int = 0, length: int = -1
) -> bytes | None:
    """A file's content, or ``length`` bytes of it from ``offset``; None if it is gone."""
    try:
        if isinstance(fs, LocalFileSystem):
            with open(path, "rb") as handle:
                if offset:
                    handle.seek(offset)
                return handle.read(length)
        return fs.cat_file(path, offset or None, None if length < 0 else offset + length)
    except FileNotFoundError:
        return None


def _write(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)  # an object store's put is whole, never half-written
        return
    folder = os.path.dirname(path)
    # Unique per writer: the same blob may be stored by two processes or threads.
    temporary = f"{folder}/.{os.path.basename(path)}.{os.getpid()}.{threading.get_ident()}"
    try:
        _write_whole(temporary, path, data)
    except FileNotFoundError:  # the cache's first file there
        os.makedirs(folder, exist_ok=True)
        _write_whole(temporary, path, data)


def _write_whole(temporary: str, target: str, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader never sees half a file."""
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _remove(fs: fsspec.AbstractFileSystem, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None
