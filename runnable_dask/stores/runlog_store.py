"""Run logs on disk: ``<log_folder>/<run_id>.json``, written atomically, never overwritten.

Only the driving process writes here. Each write replaces the whole document through a
temporary file and ``os.replace``, so a reader never sees half a run log. The JSON is
compact: indented, a map of 10,000 items was 32 MB instead of 13 and took twice as long
to write (``runnable-dask show`` reads it for people).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from runnable_dask.exceptions import RunLogExistsError, RunnableDaskError
from runnable_dask.stores.runlog import RunLog


class RunLogNotFoundError(RunnableDaskError):
    """No run log with that id."""


class RunLogStore:
    """A folder of run logs."""

    def __init__(self, log_folder: str | os.PathLike[str] = ".run_log_store") -> None:
        self.folder = Path(log_folder)

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def create(self, run_log: RunLog) -> Path:
        """Claim ``run_id`` and write the first version; refuse an id already used."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(run_log.run_id)
        try:
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(run_log.model_dump_json())
        except FileExistsError:
            raise RunLogExistsError(
                f"a run log for run id {run_log.run_id!r} exists already at {path}; "
                "runs never overwrite one: choose another run_id or leave it empty"
            ) from None
        return path

    def write(self, run_log: RunLog) -> None:
        """Replace the stored run log atomically."""
        text = run_log.model_dump_json()
        descriptor, temporary = tempfile.mkstemp(
            dir=self.folder, prefix=f".{run_log.run_id}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, self.path(run_log.run_id))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def read(self, run_id: str) -> RunLog:
        path = self.path(run_id)
        if not path.exists():
            raise RunLogNotFoundError(f"no run log for run id {run_id!r} in {self.folder}")
        return RunLog.model_validate_json(path.read_text(encoding="utf-8"))


class StoreConfig(Protocol):
    """What a run-log store type registers (entry-point group
    ``runnable_dask.run_log_stores``): the pydantic model of its ``config`` section, which
    opens the store."""

    def open(self) -> RunLogStore: ...
