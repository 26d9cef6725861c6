"""Run logs as ``<log_folder>/<run_id>.json`` in a folder or at any fsspec URL.

Only the driving process writes here, and only one driver per run id: it holds the run's
lock from the claim to the end (:mod:`runnable_dask.stores.run_lock` in a local folder;
elsewhere a lock object created only if absent). A run log is never half-written: in a
local folder each write goes to a temporary file that ``os.replace`` puts in place; on
other file systems the whole document is written as one object (an object store's put
replaces it whole) or, where the file system can move files, to a temporary name that is
then moved. A write that fails leaves the last good one in place. The JSON is compact:
indented, a map of 10,000 items was 32 MB instead of 13 and took twice as long to write.
Beside a run log whose maps have items, ``.<run_id>.index`` says where each item is in
it, so that a read need not parse them (:mod:`runnable_dask.stores.packed`); an index
that does not match the document only makes the read parse it whole. While a run goes,
a local store writes only what changed, appended to ``.<run_id>.parts`` beside the
document (:mod:`runnable_dask.stores.parts`); every read folds them in, and the run's
last write puts the whole document in place and removes them.

:class:`RunLogStorage` is what the driver, ``results`` and the CLI need from a store; a
run-log store type of another package implements it (see ``runnable_dask.plugins``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from runnable_dask.config import DEFAULT_LOG_FOLDER
from runnable_dask.exceptions import (
    RunInUseError,
    RunLogExistsError,
    RunLogStoreError,
    RunnableDaskError,
)
from runnable_dask.stores.packed import (
    Index,
    dump_run_log,
    index_json,
    load_run_log,
    write_run_log,
)
from runnable_dask.stores.parts import Journal, base_token, file_token, fold, header_line
from runnable_dask.stores.run_lock import RunLock
from runnable_dask.stores.runlog import RunLog


class RunLogNotFoundError(RunnableDaskError):
    """No run log with that id."""


class RunLogStorage(Protocol):
    """Where run logs are kept: one document per run id, written by one driver at a time.

    ``create`` refuses an id already used (:class:`RunLogExistsError`); ``write`` replaces a
    run's log whole (a reader never sees half of one); a store may also have
    ``write_changes(run_log)``, which the driver then calls during a run to store only
    what changed (a later ``read`` returning the same log as after ``write``); ``read``
    and ``read_bytes`` raise :class:`RunLogNotFoundError` for an unknown id; a write that
    cannot be done raises :class:`RunLogStoreError`. ``lock`` claims a run id for this
    driver until ``release`` (a second driver gets :class:`RunInUseError`).
    """

    location: str
    """Where the store is, as a person would name it (a folder, a URL)."""

    def url(self, run_id: str) -> str:
        """Where a person finds the run's log (a path or a URL)."""
        ...

    def exists(self, run_id: str) -> bool: ...

    def create(self, run_log: RunLog) -> None: ...

    def write(self, run_log: RunLog) -> None: ...

    def read(self, run_id: str) -> RunLog: ...

    def read_bytes(self, run_id: str) -> bytes: ...

    def run_ids(self, limit: int | None = None) -> list[str]:
        """The stored run ids, the most recently written first."""
        ...

    def lock(self, run_id: str) -> None: ...

    def release(self, run_id: str) -> None: ...


class StoreConfig(Protocol):
    """What a run-log store type registers (entry-point group
    ``runnable_dask.run_log_stores``): the pydantic model of its ``config`` section, which
    opens the store."""

    def open(self) -> RunLogStorage: ...


class RunLogStore:
    """A folder of run logs, local or at an fsspec URL (``memory://``, ``s3://``, ...)."""

    def __init__(self, log_folder: str | os.PathLike[str] = DEFAULT_LOG_FOLDER) -> None:
        self.location = os.fspath(log_folder)
        self._fs, self._root = url_to_fs(self.location)
        self._local = isinstance(self._fs, LocalFileSystem)
        self._locks: dict[str, RunLock | str] = {}
        self._journals: dict[str, tuple[bytes, Journal]] = {}
        """Runs this store wrote the document of, while they go: the first line of their
        parts (naming that document) and what the parts hold so far."""

    def __repr__(self) -> str:
        return f"RunLogStore({self.location!r})"

    def url(self, run_id: str) -> str:
        return f"{self.location.rstrip('/')}/{run_id}.json"

    def _path(self, run_id: str) -> str:
        return f"{self._root.rstrip('/')}/{run_id}.json"

    def exists(self, run_id: str) -> bool:
        return bool(self._fs.exists(self._path(run_id)))

    def lock(self, run_id: str) -> None:
        """Claim ``run_id`` for this driver until :meth:`release`; refuse one in use."""
        try:
            if self._local:
                self._locks[run_id] = RunLock.acquire(Path(self._root), run_id)
            else:
                self._locks[run_id] = self._create_lock_object(run_id)
        except OSError as exc:
            raise self._unwritable(exc, self.location) from None

    def _create_lock_object(self, run_id: str) -> str:
        """A lock object created only if absent. Unlike a local lock, it outlives a crashed
        driver: the refusal says which driver made it and how to remove it."""
        path = f"{self._root.rstrip('/')}/.{run_id}.lock"
        self._fs.makedirs(self._root, exist_ok=True)
        try:
            with self._fs.open(path, "xb") as handle:
                handle.write(f"pid {os.getpid()} on {socket.gethostname()}".encode())
        except FileExistsError:
            holder = self._fs.cat_file(path).decode("utf-8", "replace")
            raise RunInUseError(
                f"run {run_id!r} is being driven by another process ({holder}); one driver "
                f"per run: wait for it to end. If that driver is gone, remove "
                f"{self.location.rstrip('/')}/.{run_id}.lock, then resume the run "
                f"(runnable-dask retry {run_id})"
            ) from None
        return path

    def release(self, run_id: str) -> None:
        """End this driver's claim of ``run_id`` (kept until the process ends otherwise)."""
        held = self._locks.pop(run_id, None)
        if isinstance(held, RunLock):
            held.release()
        elif held is not None:
            # Gone already, or the store turned read-only: a later refusal names the file.
            with contextlib.suppress(OSError):
                self._fs.rm_file(held)

    def create(self, run_log: RunLog) -> None:
        """Write the first version of a new run's log; refuse an id already used."""
        path = self._path(run_log.run_id)
        try:
            self._fs.makedirs(self._root, exist_ok=True)
            data = dump_run_log(run_log)[0]
            with self._fs.open(path, "xb") as handle:
                handle.write(data)
            if self._local:
                self._begin_parts(run_log, lambda: base_token(data))
        except FileExistsError:
            raise RunLogExistsError(
                f"a run log for run id {run_log.run_id!r} exists already at "
                f"{self.url(run_log.run_id)}; runs never overwrite one: choose another "
                "run_id or leave it empty"
            ) from None
        except OSError as exc:
            raise self._unwritable(exc, self.url(run_log.run_id)) from None

    def write(self, run_log: RunLog) -> None:
        """Replace the stored run log whole; a failure leaves the last one in place."""
        run_id = run_log.run_id
        try:
            if self._local:
                index = self._replace_local(run_log)
            else:
                data, index = dump_run_log(run_log)
                self._replace(run_id, data)
            self._write_index(run_id, index)
            self._journals.pop(run_id, None)
            if self._fs.exists(self._parts_path(run_id)):  # folded into this document
                self._fs.rm_file(self._parts_path(run_id))
            if self._local:
                self._begin_parts(run_log, lambda: file_token(self._path(run_id)))
        except OSError as exc:
            raise self._unwritable(exc, self.url(run_id)) from None

    def write_changes(self, run_log: RunLog) -> None:
        """Store what changed since the last write: appended to the run's parts, or the
        whole document where this store did not write it or cannot append."""
        held = self._journals.get(run_log.run_id)
        if held is None:
            self.write(run_log)
            return
        header, journal = held
        changes = journal.changes(run_log)
        first = next(changes, None)
        if first is None:
            return
        path = self._parts_path(run_log.run_id)
        try:
            with open(path, "ab") as handle:
                if header:  # the first part names the document it extends
                    handle.write(header)
                    self._journals[run_log.run_id] = (b"", journal)
                handle.write(first)
                for lines in changes:
                    handle.write(lines)
        except OSError as exc:
            raise self._unwritable(exc, self.url(run_log.run_id)) from None

    def _begin_parts(self, run_log: RunLog, token: Callable[[], str]) -> None:
        """A run that goes on after this whole write continues in parts (local folders,
        where appending is cheap and safe); ``token`` names the document just written."""
        if run_log.status in ("CREATED", "PROCESSING"):
            self._journals[run_log.run_id] = (header_line(token()), Journal(run_log))

    def _parts_path(self, run_id: str) -> str:
        return f"{self._root.rstrip('/')}/.{run_id}.parts"

    def _write_index(self, run_id: str, index: Index) -> None:
        """Where a big map's branches are in the document, for quick reads (a stale or
        missing one only means a slower read: see stores.packed.load_run_log)."""
        path = self._index_path(run_id)
        if not index["maps"]:
            if self._fs.exists(path):
                self._fs.rm_file(path)
            return
        self._fs.pipe_file(path, index_json(index))

    def _index_path(self, run_id: str) -> str:
        return f"{self._root.rstrip('/')}/.{run_id}.index"

    def _replace_local(self, run_log: RunLog) -> Index:
        """The document written to a temporary file piece by piece, then put in place."""
        run_id = run_log.run_id
        descriptor, temporary = tempfile.mkstemp(
            dir=self._root, prefix=f".{run_id}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                index = write_run_log(run_log, handle)
            os.replace(temporary, self._path(run_id))
            return index
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def _replace(self, run_id: str, data: bytes) -> None:
        path = self._path(run_id)
        if _writes_objects_whole(self._fs):
            self._fs.pipe_file(path, data)
            return
        temporary = f"{self._root.rstrip('/')}/.{run_id}.{uuid.uuid4().hex}.tmp"
        self._fs.pipe_file(temporary, data)
        try:
            self._fs.mv(temporary, path)
        finally:
            if self._fs.exists(temporary):
                self._fs.rm_file(temporary)

    def read_bytes(self, run_id: str) -> bytes:
        """The run log's JSON; a run going on in parts has them folded in."""
        data = self._document(run_id)
        parts = self._parts(run_id)  # after the document: a newer document ignores them
        if parts is None:
            return data
        return dump_run_log(fold(self._load(run_id, data), parts, data))[0]

    def _document(self, run_id: str) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._path(run_id)))
        except FileNotFoundError:
            raise RunLogNotFoundError(
                f"no run log for run id {run_id!r} in {self.location}"
            ) from None

    def _parts(self, run_id: str) -> bytes | None:
        try:
            return bytes(self._fs.cat_file(self._parts_path(run_id)))
        except FileNotFoundError:
            return None

    def read(self, run_id: str) -> RunLog:
        """The run log; a big map's branches are kept packed, read when asked for."""
        data = self._document(run_id)
        parts = self._parts(run_id)
        run_log = self._load(run_id, data)
        return fold(run_log, parts, data) if parts else run_log

    def _load(self, run_id: str, data: bytes) -> RunLog:
        try:
            index = json.loads(self._fs.cat_file(self._index_path(run_id)))
        except (FileNotFoundError, ValueError):
            index = None
        return load_run_log(data, index)

    def run_ids(self, limit: int | None = None) -> list[str]:
        if self._local:
            return _newest_local(Path(self._root), limit)
        try:
            entries = self._fs.ls(self._root, detail=True)
        except FileNotFoundError:
            return []
        stamped = [
            (_written(entry), entry["name"].rsplit("/", 1)[-1].removesuffix(".json"))
            for entry in entries
            if entry["name"].endswith(".json") and entry.get("type") == "file"
        ]
        stamped.sort(reverse=True)
        return [run_id for _, run_id in stamped[:limit]]

    def _unwritable(self, exc: OSError, where: str) -> RunLogStoreError:
        return RunLogStoreError(
            f"cannot write the run log at {where} ({type(exc).__name__}: "
            f"{exc.strerror or exc}); make {self.location} a "
            f"{'folder' if self._local else 'location'} this process can write, or choose "
            "another with run-log-store.config.log_folder"
        )


def _newest_local(folder: Path, limit: int | None) -> list[str]:
    stamped = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:  # removed while listing
            continue
        with contextlib.suppress(FileNotFoundError):  # a run going on: its last part
            written = max(written, (folder / f".{path.stem}.parts").stat().st_mtime)
        stamped.append((written, path.stem))
    stamped.sort(reverse=True)
    return [run_id for _, run_id in stamped[:limit]]


def _written(entry: dict[str, Any]) -> float:
    """When a listed object was last written, as fsspec implementations name it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = entry.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if value is not None and hasattr(value, "timestamp"):  # a datetime
            return float(value.timestamp())
    return 0.0


def _writes_objects_whole(fs: Any) -> bool:
    """File systems whose put replaces an object whole (object stores, memory): there a
    temporary copy and a move would only double the work."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"} & set(protocols))
