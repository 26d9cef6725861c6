"""Run logs on disk: ``<log_folder>/<run_id>.json``, written atomically, never overwritten.

Only the driving process writes here, and only one driver per run id: it holds the run's
lock (:mod:`runnable_dask.stores.run_lock`) from the claim to the end. Each write
replaces the whole document through a temporary file and ``os.replace``, so a reader
never sees half a run log, and a write that fails leaves the last good one in place.
The JSON is compact: indented, a map of 10,000 items was 32 MB instead of 13 and took
twice as long to write (``runnable-dask show`` reads it for people).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from runnable_dask.exceptions import RunLogExistsError, RunLogStoreError, RunnableDaskError
from runnable_dask.stores.run_lock import RunLock
from runnable_dask.stores.runlog import RunLog


class RunLogNotFoundError(RunnableDaskError):
    """No run log with that id."""


class RunLogStore:
    """A folder of run logs."""

    def __init__(self, log_folder: str | os.PathLike[str] = ".run_log_store") -> None:
        self.folder = Path(log_folder)
        self._locks: dict[str, RunLock] = {}

    def lock(self, run_id: str) -> None:
        """Claim ``run_id`` for this driver until :meth:`release`; refuse one in use."""
        try:
            self._locks[run_id] = RunLock.acquire(self.folder, run_id)
        except OSError as exc:
            raise self._unwritable(exc, self.folder) from None

    def release(self, run_id: str) -> None:
        """End this driver's claim of ``run_id`` (kept until the process ends otherwise)."""
        held = self._locks.pop(run_id, None)
        if held is not None:
            held.release()

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def create(self, run_log: RunLog) -> Path:
        """Write the first version of a new run's log; refuse an id already used."""
        path = self.path(run_log.run_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(run_log.model_dump_json())
        except FileExistsError:
            raise RunLogExistsError(
                f"a run log for run id {run_log.run_id!r} exists already at {path}; "
                "runs never overwrite one: choose another run_id or leave it empty"
            ) from None
        except OSError as exc:
            raise self._unwritable(exc, path) from None
        return path

    def write(self, run_log: RunLog) -> None:
        """Replace the stored run log atomically; a failure leaves the last one in place."""
        text = run_log.model_dump_json()
        try:
            self._replace(run_log.run_id, text)
        except OSError as exc:
            raise self._unwritable(exc, self.path(run_log.run_id)) from None

    def _replace(self, run_id: str, text: str) -> None:
        descriptor, temporary = tempfile.mkstemp(
            dir=self.folder, prefix=f".{run_id}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, self.path(run_id))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def read(self, run_id: str) -> RunLog:
        path = self.path(run_id)
        if not path.exists():
            raise RunLogNotFoundError(f"no run log for run id {run_id!r} in {self.folder}")
        return RunLog.model_validate_json(path.read_text(encoding="utf-8"))

    def _unwritable(self, exc: OSError, path: Path) -> RunLogStoreError:
        return RunLogStoreError(
            f"cannot write the run log at {path} ({type(exc).__name__}: {exc.strerror or exc}); "
            f"make {self.folder} a folder this process can write, or choose another with "
            "run-log-store.config.log_folder"
        )


class StoreConfig(Protocol):
    """What a run-log store type registers (entry-point group
    ``runnable_dask.run_log_stores``): the pydantic model of its ``config`` section, which
    opens the store."""

    def open(self) -> RunLogStore: ...
