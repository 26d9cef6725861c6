"""One append-only journal of checkpoints per process, and an index of every journal of a run.

A task on a cluster keeps its success before it reports it, since its worker may be lost
the moment after. A file per step cost two thirds of a trivial step's own time on a
worker (py-spy on a worker of a 6,000-item map: 97 of 200 samples writing the file, 38
looking for one); so each process appends the checkpoints of the steps it runs to one file
of its own, in one ``write`` before the step reports (in the operating system's hands:
a worker killed after that loses nothing).
A task looks for its checkpoint in an index by step name built from the journals of
every process of the run, so a task that Dask runs again on another worker after a worker
loss, or again in a resumed run, finds what was kept. Each record carries its step's
name ahead of the pickled checkpoint, so indexing unpickles nothing.

A record is the payload's and the name's lengths (:data:`_HEADER`), the name in UTF-8,
then the payload. A record cut short (its process killed while appending it, or still
writing it) ends what is read of that journal for now: its step was not reported.
This module handles bytes only; :mod:`runnable_dask.runtime.checkpoint` pickles them.

**No lock is held across a system call on a step's usual path** (only once per journal
that a process creates or learns of). A worker's threads run steps side by side, and a
thread that holds a lock while it waits in the kernel, or for the interpreter
afterwards, queues every other thread behind it: with a lock around the
append's ``write`` and another around the look's ``stat``, ``fstat`` and ``pread``, py-spy
found a wide run's worker threads waiting on those two locks in 87 of 229 samples of
their steps. How each promise is kept without them:

* *Appending.* The journal is opened with ``O_APPEND``: the kernel puts each ``write`` at
  the end of the file in one piece (an inode lock orders the writes of all threads), so
  threads append without one of ours, and each record is whole in the file before its
  step reports. A thread does not learn where its record landed, so this process's own
  records are not indexed when written: their names are noted, and the journal is read
  back (as any other) when a step of that name is looked for, or when many are noted.
  A process killed in a ``write`` writes nothing after it (its other threads' writes
  stop at the kill too), so a record cut short by a kill is the journal's last.
  A ``write`` the system cuts short otherwise (the disk full, a file size limit) fails
  the step's keeping and ends that journal: later records go to a new one. A record
  another thread wrote in the same instant lands behind the cut one, and a reader takes
  it as the rest of the cut record, whose payload is then a pickle cut short followed by
  other bytes: it fails to unpickle (but for a freak of those bytes) and reads as not
  kept, so its step runs again if Dask runs its task again. The previous scheme did the
  same with whatever its process appended after a cut record whose rest it could not
  write either.
* *Finding the journals.* A process names its journal in the folder's list
  (:data:`LIST`, appended the same way, each name on a line of its own) after creating
  it and before writing its first record. A look reads what the list gained, so a
  journal that holds a reported step is always known to it; a line cut short (its
  writer killed) names no journal and is passed over. The folder is listed once, at a
  process's first look, for journals of runs kept before the list existed.
* *Reading.* A look reads, with one ``pread`` each, what every other journal gained since
  it was last read, from where its last whole record ended, and indexes the whole records
  in it. Threads look at once without a lock: two that read the same bytes index the
  same records at the same places, so doing it twice changes nothing, and each look
  reads after it began, so it sees every record written before. What a journal holds
  when this process learns of it is read once, under the lock that opens it, before
  other looks read it (a resumed run's journal may be long: threads reading it at once
  would each index all of it); a look that finds a journal named but not yet open waits
  for that. Likewise a gain longer than one ``pread`` of :data:`_READ` bytes (a journal
  that grew fast while this process looked elsewhere) is read by one thread at a time:
  without that, threads each re-read and re-indexed the same megabytes, fell further
  behind and read more (a process appending 300,000 records a second left eight looking
  threads 692 steps in 8 s, in 4.4 GB). A thread that waits for it then reads from
  where it ended, after it began, so it still sees every record written before its look.
  Reading stops at a record cut short, which nothing then reads; the file has no holes
  (nothing writes at an offset), so no read sees bytes that were never written.
* *Closing.* A process keeps the journals of a few runs open; the oldest run's files
  are closed only when no thread is using them, so a look never reads a number that the
  system has given to another file. Without a lock: a thread notes itself as a user (one
  ``list.append``, a single step of the interpreter) before it looks whether the
  journals are closed, and closing marks them closed before it looks for users; so a
  thread that found them open is seen by whoever closes them, and the files are closed
  (once, under a lock) by the last of them to leave. With a lock around that count, a
  thread that lost the interpreter while holding it queued the others of a worker
  behind it: py-spy put 65 of a map step's 467 samples on a worker in taking it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import uuid
from collections.abc import Iterator

SUFFIX = ".journal"
LIST = "journals.list"
"""The folder's list of journals, one name a line."""
_HEADER = struct.Struct("<QI")
_READ = 1 << 16
"""Bytes asked of one ``pread`` of a journal: a gain as long is read under a lock."""
_NOTED = 4096
"""Own records noted but not read back: past this many, a look reads them back."""


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


def _gain(handle: int, begin: int) -> bytes:
    """What a file holds from ``begin`` to its end now."""
    data = os.pread(handle, _READ, begin)
    if len(data) < _READ:
        return data
    parts = [data]
    while len(data) == _READ:
        data = os.pread(handle, _READ, begin + _READ * len(parts))
        parts.append(data)
    return b"".join(parts)


class Journals:
    """The journals of one run's folder as this process sees them: its own, to append
    to, and an index of every journal's records (its own included), kept up to date.

    The journals stay open while the run's steps come (the process holds a file of each
    process of the run open). See the module's docstring for how threads share them.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._users: list[None] = []
        """One entry per thread using the files now (see the module's docstring)."""
        self._closed = False
        self._released = False
        self._releasing = threading.Lock()
        """Makes the files' closing happen once (not on a step's path)."""
        self._creating = threading.Lock()
        """Taken once per journal this process creates or learns of."""
        self._long_reads = threading.Lock()
        """Taken to read a long gain of a journal (not on a step's usual path)."""
        self._own = -1
        self._own_handles: list[int] = []
        """Every journal this process created for the run (one, unless a write was cut)."""
        self._noted: set[str] = set()
        """Steps appended to this process's journals and not yet read back."""
        self._list = -1
        self._listed = 0
        """How many bytes of the folder's list were whole lines when last read."""
        self._others: dict[str, int] = {}
        """Per journal known to this process (its own ones after they are read back): its
        open file."""
        self._read_to: dict[int, int] = {}
        """Per journal: how many of its bytes were whole records when last read."""
        self._index: dict[str, tuple[int, int, int]] = {}
        """Per step: the open journal that kept it, where its payload starts, its length."""

    def append(self, name: str, payload: bytes) -> None:
        """Add a step's checkpoint, in the operating system's hands when this returns."""
        if not self._enter():  # closed while the step ran: the run's journals opened again
            of(self.folder).append(name, payload)
            return
        try:
            encoded = name.encode()
            record = _HEADER.pack(len(payload), len(encoded)) + encoded + payload
            own = self._own if self._own >= 0 else self._create()
            self._noted.add(name)  # before the write: a look after it reads it back
            written = os.write(own, record)
            if written < len(record):
                self._create(instead_of=own)
                raise OSError(f"the journal's write was cut short ({written} of {len(record)})")
        finally:
            self._leave()

    def find(self, name: str) -> bytes | None:
        """The payload kept for the step by any process of the run, if any."""
        if not self._enter():
            return of(self.folder).find(name)
        try:
            self._refresh()
            if name in self._noted or len(self._noted) > _NOTED:
                self._read_back()
            where = self._index.get(name)
            if where is None:
                return None
            handle, start, size = where
            return os.pread(handle, size, start)
        finally:
            self._leave()

    def close(self) -> None:
        """Close the run's journals in this process, once no thread uses them."""
        self._closed = True  # before looking for users: see the module's docstring
        if not self._users:
            self._release()

    def _enter(self) -> bool:
        self._users.append(None)  # before looking: a close from now on sees this user
        if self._closed:
            self._leave()
            return False
        return True

    def _leave(self) -> None:
        self._users.pop()
        if self._closed and not self._users:
            self._release()

    def _release(self) -> None:
        """Close every file, once, when no thread uses them after :meth:`close`."""
        with self._releasing:
            if self._released:
                return
            self._released = True
        handles = {self._list, *self._own_handles, *self._others.values()}
        for handle in handles - {-1}:
            os.close(handle)
        self._index.clear()

    def _create(self, instead_of: int = -1) -> int:
        """This process's journal, created and named in the folder's list before its
        first record; a new one ``instead_of`` a journal whose write was cut short."""
        with self._creating:
            if self._own >= 0 and self._own != instead_of:
                return self._own
            os.makedirs(self.folder, exist_ok=True)
            base = f"{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
            own = os.open(f"{self.folder}/{base}", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            self._own_handles.append(own)
            self._others[base] = own  # known: never opened again from the list
            # The line's own newline first: a line cut short ahead of it ends there.
            line = f"\n{base}\n".encode()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            listing = os.open(f"{self.folder}/{LIST}", flags, 0o644)
            try:
                if os.write(listing, line) < len(line):
                    raise OSError(f"naming the journal in {LIST} was cut short")
            finally:
                os.close(listing)
            self._own = own
            return own

    def _refresh(self) -> None:
        """Index what the other journals gained since they were last read."""
        if self._list >= 0 or self._open_list():
            listed = self._listed
            gained = _gain(self._list, listed)
            cut = gained.rfind(b"\n") + 1
            if cut:
                self._learn(gained[:cut].decode(errors="replace").split("\n"))
                self._listed = max(self._listed, listed + cut)
        for handle in list(self._others.values()):
            if handle not in self._own_handles:
                self._read(handle)

    def _open_list(self) -> bool:
        """At a process's first look at the folder (or until its list exists): the list
        opened, and the journals already there (kept before the list existed) learnt."""
        try:
            handle = os.open(f"{self.folder}/{LIST}", os.O_RDONLY)
        except FileNotFoundError:
            handle = -1
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as entries:
            self._learn([entry.name for entry in entries])
        with self._creating:
            if self._list < 0:
                self._list, handle = handle, -1
        if handle >= 0:  # another thread was first
            os.close(handle)
        return self._list >= 0

    def _learn(self, names: list[str]) -> None:
        """Open the journals named that this process does not know yet, and read what
        each holds already once, before the others look at it: a resumed run's journals
        are long, and threads reading one at once would each index all of it."""
        new = [n for n in names if n.endswith(SUFFIX) and "/" not in n and n not in self._others]
        if not new:
            return
        with self._creating:  # once per journal of the run; a thread that needs it waits
            for base in new:
                if base in self._others:
                    continue
                try:
                    handle = os.open(f"{self.folder}/{base}", os.O_RDONLY)
                except FileNotFoundError:  # a name cut short: no such journal
                    continue
                self._read(handle)
                self._others[base] = handle

    def _read_back(self) -> None:
        """Index this process's own records (noted when written)."""
        for handle in list(self._own_handles):
            self._read(handle, noted=True)

    def _read(self, handle: int, noted: bool = False) -> None:
        """Index the whole records a journal gained since it was last read: a short gain
        without a lock, a long one by one thread at a time (see the module's docstring)."""
        begin = self._read_to.get(handle, 0)
        data = os.pread(handle, _READ, begin)
        if len(data) < _READ:
            self._index_records(handle, begin, data, noted)
            return
        with self._long_reads:
            begin = self._read_to.get(handle, 0)
            self._index_records(handle, begin, _gain(handle, begin), noted)

    def _index_records(self, handle: int, begin: int, data: bytes, noted: bool) -> None:
        end = 0
        for name, start, length in records(data):
            self._index[name] = (handle, begin + start, length)
            if noted:
                self._noted.discard(name)
            end = start + length
        # Indexed first, then passed: a look that reads from here misses nothing before.
        if begin + end > self._read_to.get(handle, 0):  # another look may have gone further
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
