"""Reading the run-log store for the CLI: where it is, which runs are recent, time spans.

``runs`` reads many run logs, so it works on plain JSON; ``show`` and ``retry`` read one,
as the pydantic model. Both measure time the same way: from the earliest attempt start to
the latest attempt end below a run or step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runnable_dask.cli.errors import UsageProblem
from runnable_dask.config import load_configuration
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStore

SUGGESTED_IDS = 5


def resolve_log_folder(configuration_file: str | None, log_folder: str | None) -> Path:
    """``--log-folder``, else the configuration's run-log-store folder."""
    if log_folder:
        return Path(log_folder)
    return Path(load_configuration(configuration_file or "").run_log_store.config.log_folder)


def recent_run_logs(folder: Path, limit: int | None = None) -> list[Path]:
    """Run log files, the most recently written first (a run writes its log as it goes)."""
    stamped = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            stamped.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # removed while listing
            continue
    stamped.sort(reverse=True)
    return [path for _, path in stamped[:limit]]


def read_run_log(folder: Path, run_id: str) -> RunLog:
    """One run log; an unknown id is refused with the most recent ids to choose from."""
    try:
        return RunLogStore(folder).read(run_id)
    except RunLogNotFoundError:
        recent = [path.stem for path in recent_run_logs(folder, SUGGESTED_IDS)]
        hint = f"; recent runs: {', '.join(recent)}" if recent else "; it holds no run logs"
        raise UsageProblem(f"no run {run_id!r} in {folder}{hint}") from None
    except ValueError as exc:
        raise UsageProblem(f"run log {folder / run_id}.json cannot be read: {exc}") from None


@dataclass(frozen=True, slots=True)
class Span:
    """When something started and ended; either may be unknown (not started, running)."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, times: Iterable[tuple[str, str]]) -> Span:
        """The span of (start_time, end_time) ISO strings; empty strings are skipped."""
        starts, ends = [], []
        for start, end in times:
            if start:
                starts.append(datetime.fromisoformat(start))
            if end:
                ends.append(datetime.fromisoformat(end))
        return cls(min(starts, default=None), max(ends, default=None))

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def started(self) -> str:
        """The start in local time, as a person reads it."""
        return self.start.astimezone().strftime("%Y-%m-%d %H:%M:%S") if self.start else "-"

    def duration(self) -> str:
        return format_seconds(self.seconds)


def format_seconds(seconds: float | None) -> str:
    """``0.01 s``, ``12.3 s``, ``4 m 05 s``, ``2 h 07 m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"
