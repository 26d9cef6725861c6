"""One append-only journal of checkpoints per process, and an index of every journal of a run.

A task on a cluster keeps its success before it reports it, since its worker may be lost
the moment after. A file per step cost two thirds of a trivial step's own time on a
worker (py-spy on a worker of a 6,000-item map: 97 of 200 samples writing the file, 38
looking for one); so each process appends the checkpoints of the steps it runs to one file
of its own, flushed before the step reports (a worker killed after that loses nothing).
A task looks for its checkpoint in an index by step name built from the journals of
every process of the run, so a task that Dask runs again on another worker after a worker
loss, or again in a resumed run, finds what was kept. The index reads only what each
journal gained since it last looked (one ``stat`` per journal per look), and each record
carries its step's name ahead of the pickled checkpoint, so indexing unpickles nothing.

A record is the payload's and the name's lengths (:data:`_HEADER`), the name in UTF-8,
then the payload. A record cut short (its process killed while appending it, or still
writing it) ends what is read of that journal for now: its step was not reported.
This module handles bytes only; :mod:`runnable_dask.runtime.checkpoint` pickles them.
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
from collections.abc import Iterator
from typing import BinaryIO

SUFFIX = ".journal"
_HEADER = struct.Struct("<QI")


def records(data: bytes) -> Iterator[tuple[str, int, int]]:
    """The whole records of a journal's bytes: each step's name, where its payload
    starts and its length."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        size, named = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size + named
        if start + size > len(data):
            return
        yield data[offset + _HEADER.size : start].decode(), start, size
        offset = start + size


class Journals:
    """The journals of one run's folder as this process sees them: its own, to append
    to, and an index of every journal's records (its own included), kept up to date."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # the worker's threads run tasks side by side
        self._own: BinaryIO | None = None
        self._own_path = ""
        self._own_size = 0
        self._index: dict[str, tuple[str, int, int]] = {}
        self._read_to: dict[str, int] = {}
        """Per journal of another process: how many bytes were whole records when read."""
        self._sizes: dict[str, int] = {}
        """Per journal of another process: its size when last read (unchanged: no read)."""

    def append(self, name: str, payload: bytes) -> None:
        """Add a step's checkpoint, in the operating system's hands when this returns."""
        encoded = name.encode()
        record = _HEADER.pack(len(payload), len(encoded)) + encoded + payload
        with self._lock:
            handle = self._own or self._open()
            handle.write(record)
            handle.flush()
            start = self._own_size + _HEADER.size + len(encoded)
            self._index[name] = (self._own_path, start, len(payload))
            self._own_size += len(record)

    def find(self, name: str) -> bytes | None:
        """The payload kept for the step by any process of the run, if any."""
        with self._lock:
            self._refresh()
            where = self._index.get(name)
        if where is None:
            return None
        path, start, size = where
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read(size)

    def close(self) -> None:
        """Close this process's journal (a step kept after this opens another)."""
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own, self._own_path, self._own_size = None, "", 0

    def _open(self) -> BinaryIO:
        os.makedirs(self.folder, exist_ok=True)
        self._own_path = f"{self.folder}/{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
        self._own = open(self._own_path, "ab")  # noqa: SIM115 (open while the process lives)
        return self._own

    def _refresh(self) -> None:
        """Index what the other journals gained since they were last read."""
        try:
            entries = os.scandir(self.folder)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                path = entry.path
                if not path.endswith(SUFFIX) or path == self._own_path:
                    continue
                size = entry.stat().st_size
                if size != self._sizes.get(path):
                    self._sizes[path] = size
                    self._read(path)

    def _read(self, path: str) -> None:
        begin = self._read_to.get(path, 0)
        with open(path, "rb") as handle:
            handle.seek(begin)
            data = handle.read()
        end = 0
        for name, start, size in records(data):
            self._index[name] = (path, begin + start, size)
            end = start + size
        self._read_to[path] = begin + end


RUNS_OPEN = 16
"""Runs whose journals a process holds open; the oldest is closed first (a standing
cluster's workers serve run after run: each would otherwise keep a file open for good)."""


class _Open:
    """This process's journals, by run folder."""

    def __init__(self) -> None:
        self.journals: dict[str, Journals] = {}
        self.lock = threading.Lock()

    def forget(self) -> None:
        """In a forked child: its steps go to a journal of its own, not its parent's."""
        self.journals = {}
        self.lock = threading.Lock()

    def of(self, folder: str) -> Journals:
        found = self.journals.get(folder)
        if found is not None:
            return found
        with self.lock:
            found = self.journals.get(folder)
            if found is None:
                found = self.journals[folder] = Journals(folder)
                if len(self.journals) > RUNS_OPEN:
                    self.journals.pop(next(iter(self.journals))).close()
            return found


_OPEN = _Open()
os.register_at_fork(after_in_child=_OPEN.forget)


def of(folder: str) -> Journals:
    """This process's view of the journals in ``folder`` (one per run's folder)."""
    return _OPEN.of(folder)
