"""The step cache on disk or in an object store: entries by key, blobs by content.

Layout under the cache location (any fsspec URL; by default ``<catalog>/.cache``)::

    entries/<key>.json     one per cached step run: outputs, files, who made it, when
    blobs/<sha256>         pickled values, put files, logs, executed notebooks

A blob's name is its content's digest, so equal content is stored once, and a blob is
written before any entry names it. Each file is written whole: on a local folder through
a temporary file and ``os.replace``; on an object store a put is whole by itself. Readers
check what they read (JSON that parses, blobs whose digest matches) and treat anything
else as a missing entry.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from runnable_dask.exceptions import RunnableDaskError

ENTRIES = "entries"
BLOBS = "blobs"


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

    def read_entry(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key``; None if there is none; CorruptEntryError if unreadable."""
        data = self._read(f"{ENTRIES}/{key}.json")
        if data is None:
            return None
        try:
            entry = json.loads(data)
        except ValueError as exc:
            raise CorruptEntryError(f"entry {key[:12]} is not valid JSON ({exc})") from None
        if not isinstance(entry, dict) or entry.get("key") != key:
            raise CorruptEntryError(f"entry {key[:12]} does not describe key {key[:12]}")
        return entry

    def write_entry(self, entry: dict[str, Any]) -> None:
        """Store an entry (its blobs must be stored already)."""
        text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        self._write(f"{ENTRIES}/{entry['key']}.json", text.encode("utf-8"))

    def put_blob(self, data: bytes, replace: bool = False, digest: str = "") -> str:
        """Store ``data`` under its digest (computed unless given), unless it is there
        already (``replace``: even then, over a damaged copy); return the digest."""
        digest = digest or hashlib.sha256(data).hexdigest()
        path = f"{BLOBS}/{digest}"
        if replace or not self._exists(path):
            self._write(path, data)
        return digest

    def blob(self, digest: str) -> bytes:
        """A blob's content, checked against its name."""
        data = self._read(f"{BLOBS}/{digest}")
        if data is None:
            raise CorruptEntryError(f"blob {digest[:12]} is missing")
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptEntryError(f"blob {digest[:12]} does not match its digest")
        return data

    def keys(self) -> set[str]:
        """The keys of the entries stored now: one listing, instead of a read per key."""
        fs, root = self._fs_root
        folder = f"{root}/{ENTRIES}"
        if isinstance(fs, LocalFileSystem):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return set()
        else:
            names = [path.rsplit("/", 1)[-1] for path in _listing(fs, folder)]
        return {n.removesuffix(".json") for n in names if n.endswith(".json") and n[0] != "."}

    def entries(self) -> list[EntrySummary]:
        """Every readable entry, newest first (unreadable ones are listed as such)."""
        fs, root = self._fs_root
        found = []
        for path in _listing(fs, f"{root}/{ENTRIES}"):
            key = path.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                entry = self.read_entry(key) or {}
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

        A run storing an entry at the same moment may lose a blob it just wrote; its entry
        then reads as corrupt, and the step runs again next time.
        """
        fs, root = self._fs_root
        for key in keys:
            _remove(fs, f"{root}/{ENTRIES}/{key}.json")
        named: set[str] = set()
        for path in _listing(fs, f"{root}/{ENTRIES}"):
            key = path.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                named.update(blob_digests(self.read_entry(key) or {}))
            except CorruptEntryError:
                continue
        removed = 0
        for path in _listing(fs, f"{root}/{BLOBS}"):
            if path.rsplit("/", 1)[-1] not in named:
                _remove(fs, path)
                removed += 1
        return removed

    def _exists(self, relative: str) -> bool:
        fs, root = self._fs_root
        if isinstance(fs, LocalFileSystem):
            return os.path.exists(f"{root}/{relative}")
        return fs.exists(f"{root}/{relative}")

    def _read(self, relative: str) -> bytes | None:
        fs, root = self._fs_root
        try:
            if isinstance(fs, LocalFileSystem):
                with open(f"{root}/{relative}", "rb") as handle:
                    return handle.read()
            return fs.cat_file(f"{root}/{relative}")
        except FileNotFoundError:
            return None

    def _write(self, relative: str, data: bytes) -> None:
        fs, root = self._fs_root
        target = f"{root}/{relative}"
        if not isinstance(fs, LocalFileSystem):
            fs.pipe_file(target, data)  # an object store's put is whole, never half-written
            return
        folder = os.path.dirname(target)
        # Unique per writer: the same entry may be stored by two processes or threads.
        temporary = f"{folder}/.{os.path.basename(target)}.{os.getpid()}.{threading.get_ident()}"
        try:
            _write_whole(temporary, target, data)
        except FileNotFoundError:  # the cache's first file there
            os.makedirs(folder, exist_ok=True)
            _write_whole(temporary, target, data)


def blob_digests(entry: dict[str, Any]) -> set[str]:
    """Every blob an entry names."""
    digests = {o["blob"] for o in entry.get("outputs", {}).values() if "blob" in o}
    digests.update(f["blob"] for f in entry.get("files", []))
    digests.update(entry[name] for name in ("log", "notebook") if entry.get(name))
    return digests


@functools.lru_cache(maxsize=16)
def _filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(location)


def _listing(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    try:
        return [p for p in fs.ls(folder, detail=False) if not p.rsplit("/", 1)[-1].startswith(".")]
    except FileNotFoundError:
        return []


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
