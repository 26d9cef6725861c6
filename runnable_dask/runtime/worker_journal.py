"""One append-only journal of checkpoints per process, and an index of every journal of a run.

A task on a cluster keeps its success before it reports it, since its worker may be lost
the moment after. A file per step cost two thirds of a trivial step's own time on a
worker (py-spy on a worker of a 6,000-item map: 97 of 200 samples writing the file, 38
looking for one); so each process appends the checkpoints of the steps it runs to one file
of its own, in one ``write`` before the step reports (in the operating system's hands:
a worker killed after that loses nothing).
A task looks for its checkpoint in an index by step name built from the journals of
every process of the run, so a task that Dask runs again on another worker after a worker
loss, or again in a resumed run, finds what was kept. The index reads only what each
journal gained since it last looked (a look costs a ``stat`` of the folder and an
``fstat`` per other process's journal, so it grows with the number of workers), and
each record carries its step's name ahead of the pickled checkpoint, so indexing
unpickles nothing.

A record is the payload's and the name's lengths (:data:`_HEADER`), the name in UTF-8,
then the payload. A record cut short (its process killed while appending it, or still
writing it) ends what is read of that journal for now: its step was not reported.
This module handles bytes only; :mod:`runnable_dask.runtime.checkpoint` pickles them.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import uuid
from collections.abc import Iterator

SUFFIX = ".journal"
_HEADER = struct.Struct("<QI")
_SETTLED = 1_000_000_000
"""Nanoseconds after the folder's last change that listing it sees every journal."""


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
    to, and an index of every journal's records (its own included), kept up to date.

    The journals stay open while the run's steps come (the process holds a file of each
    process of the run open); the folder is listed again only when it changed.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        # The worker's threads run tasks side by side: one appends while another looks.
        self._writing = threading.Lock()
        self._reading = threading.Lock()
        self._closed = False
        self._own = -1
        self._own_path = ""
        self._own_size = 0
        self._others: dict[str, int] = {}
        """Another process's journal: its open file."""
        self._read_to: dict[int, int] = {}
        """Per journal of another process: how many of its bytes were whole records."""
        self._sizes: dict[int, int] = {}
        """Per journal of another process: its size when last read (unchanged: no read)."""
        self._index: dict[str, tuple[int, int, int]] = {}
        """Per step: the open journal that kept it, where its payload starts, its length."""
        self._listed = (0, 0)
        """The folder's modification time when it was last listed, and when that was."""

    def append(self, name: str, payload: bytes) -> None:
        """Add a step's checkpoint, in the operating system's hands when this returns."""
        encoded = name.encode()
        record = _HEADER.pack(len(payload), len(encoded)) + encoded + payload
        with self._writing:
            if self._closed:  # closed while the step ran: the run's journals opened again
                of(self.folder).append(name, payload)
                return
            if self._own < 0:  # named before it exists: a look never takes it for another's
                os.makedirs(self.folder, exist_ok=True)
                self._own_path = f"{self.folder}/{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
                self._own = os.open(self._own_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            view = memoryview(record)
            while view:  # one write, unless the system cuts it short
                view = view[os.write(self._own, view) :]
            start = self._own_size + _HEADER.size + len(encoded)
            self._index[name] = (self._own, start, len(payload))
            self._own_size += len(record)

    def find(self, name: str) -> bytes | None:
        """The payload kept for the step by any process of the run, if any."""
        with self._reading:
            if self._closed:
                return of(self.folder).find(name)
            self._refresh()
            where = self._index.get(name)
            if where is None:
                return None
            handle, start, size = where
            return os.pread(handle, size, start)

    def close(self) -> None:
        """Close the run's journals in this process."""
        with self._writing, self._reading:
            self._closed = True
            for handle in [self._own, *self._others.values()]:
                if handle >= 0:
                    os.close(handle)
            self._index.clear()

    def _refresh(self) -> None:
        """Index what the other journals gained since they were last read."""
        try:
            changed = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return
        listed, when = self._listed
        # A journal created in the same tick of the file system's clock as the folder's
        # last change leaves its time as it was: listed too soon after, it is listed again.
        if changed != listed or when - changed < _SETTLED:
            self._listed = (changed, time.time_ns())
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    path = entry.path
                    known = path in self._others or path == self._own_path
                    if path.endswith(SUFFIX) and not known:
                        self._others[path] = os.open(path, os.O_RDONLY)
        for handle in self._others.values():
            size = os.fstat(handle).st_size
            if size != self._sizes.get(handle):
                self._sizes[handle] = size
                self._read(handle, size)

    def _read(self, handle: int, size: int) -> None:
        begin = self._read_to.get(handle, 0)
        data = os.pread(handle, size - begin, begin)
        end = 0
        for name, start, length in records(data):
            self._index[name] = (handle, begin + start, length)
            end = start + length
        self._read_to[handle] = begin + end


RUNS_OPEN = 4
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
