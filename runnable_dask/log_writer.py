"""When the run log is written to its store, and what a failed write means for the run.

Writes are batched: the log is written when at least ``min_interval`` seconds, and
:data:`WRITE_COST_FACTOR` times the last write's own duration, have passed, so writing
never takes more than about 0.5% of a run however many steps it has. During the run a
store that can (``write_changes``, a local folder) stores only what changed since the
last write; the final write, of the whole log, happens in :meth:`LogWriter.close`,
whatever happened. A run whose tasks are threads of the driver stores their checkpoints
before each write, so every success the stored log records has its checkpoint kept.
"""

from __future__ import annotations

import time

from runnable_dask.exceptions import RunLogStoreError
from runnable_dask.frozen_heap import collections_paused
from runnable_dask.runtime.checkpoint import Checkpoints
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStorage
from runnable_dask.timestamps import now

WRITE_COST_FACTOR = 200
"""Whatever a write costs, writes spaced so take 1/201 of a long run's time (a write of
what changed costs in proportion to what changed, so a cheaper one only comes sooner).
At 100, a 100,000-item map's writes of changes took 1% of its 130 s: about as long as its
final write of the whole log."""


class LogWriter:
    """Writes one run's log to its store, not more often than is worth it."""

    def __init__(self, run_log: RunLog, store: RunLogStorage, min_interval: float = 0.25) -> None:
        self.run_log = run_log
        self.store = store
        self.min_interval = min_interval
        self.checkpoints: Checkpoints | None = None
        """Set for a run in the driving process: stored before each write of the log."""
        self._last_write = 0.0
        self._write_cost = 0.0
        self._dirty = False
        self._failed = False
        self._last_good = now()  # the driver wrote the run log when it claimed the run

    def pending(self) -> None:
        """The log changed: written with the next write."""
        self._dirty = True

    def changed(self) -> None:
        """The log changed: write it if a write is due."""
        self._dirty = True
        elapsed = time.monotonic() - self._last_write
        if elapsed >= max(self.min_interval, WRITE_COST_FACTOR * self._write_cost):
            self._write()

    def idle(self) -> None:
        """Nothing arrived for a while: write what is pending, so progress is visible."""
        if self._dirty:
            self.changed()

    def close(self) -> None:
        """Write the final run log, unless the store already refused a write."""
        if not self._failed:
            self._write(whole=True)

    def _write(self, whole: bool = False) -> None:
        with collections_paused():
            self._write_now(whole)

    def _write_now(self, whole: bool) -> None:
        began = time.monotonic()
        if self.checkpoints is not None:
            self.checkpoints.flush()
        write_changes = None if whole else getattr(self.store, "write_changes", None)
        try:
            if write_changes is not None:
                write_changes(self.run_log)
            else:
                self.store.write(self.run_log)
        except RunLogStoreError as exc:
            self._failed = True
            raise RunLogStoreError(self._stopped(exc)) from None
        self._last_write = time.monotonic()
        self._last_good = now()
        self._write_cost = self._last_write - began
        self._dirty = False

    def _stopped(self, exc: RunLogStoreError) -> str:
        """A write failed mid-run: the run stops; say where its record is."""
        run_id = self.run_log.run_id
        return (
            f"{exc}. The run was stopped: a run that cannot be recorded does not go on. "
            f"The last good run log is {self.store.url(run_id)}, as written at "
            f"{self._last_good} (steps that ended since are missing from it); the steps' "
            f"logs and checkpoints are in the catalog, so once the folder is writable "
            f"`runnable-dask retry {run_id}` resumes the run"
        )
