"""One driver per run id: an exclusive lock on ``<log_folder>/.<run_id>.lock``.

The driver holds an ``fcntl.flock`` on the file for the whole run, with its host and
process id written inside for messages. The kernel releases a flock when its process
ends, however it ends (``kill -9`` and a crash included), so a claim is stale exactly
when no live process holds the lock: nothing to time out, no pid to guess about. The
file is removed when the run ends (an unlocked file left behind claims nothing); whoever
locks a file that was removed meanwhile tries again on the new one.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from runnable_dask.exceptions import RunInUseError


class RunLock:
    """The claim of one run id by this process; :meth:`release` ends it."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor = descriptor

    @classmethod
    def acquire(cls, folder: Path, run_id: str) -> RunLock:
        """Claim ``run_id``, or raise :class:`RunInUseError` naming the driver holding it."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".{run_id}.lock"
        while True:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(descriptor)
                os.close(descriptor)
                raise RunInUseError(
                    f"run {run_id!r} is being driven by another process ({holder}); one "
                    "driver per run: wait for it to end, then resume the run if it failed "
                    f"(runnable-dask retry {run_id})"
                ) from None
            if _same_file(descriptor, path):
                break
            os.close(descriptor)  # the holder removed it as we opened it: lock the new one
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        return cls(path, descriptor)

    def release(self) -> None:
        """Remove the lock file, then unlock: the next driver may claim the run."""
        if self._descriptor < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # an unwritable folder keeps the file: unlocked, it claims nothing
        finally:
            os.close(self._descriptor)
            self._descriptor = -1


def _read(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has just started"


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.fstat(descriptor).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
