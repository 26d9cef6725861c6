"""Reading runs back: a run log by id, and its steps, parameters and metrics as rows.

Rows are plain dicts, so they print, filter and compare across runs with no other
package; ``to_dataframe`` turns them into a pandas DataFrame where pandas is installed.
``runnable-dask runs`` and ``runnable-dask show`` read runs through this module.

Example:
    >>> from runnable_dask import results
    >>> run_log = results.load_run("calm-otter-20261128-031502-1f2e")  # doctest: +SKIP
    >>> results.to_dataframe(results.metrics(run_log))  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from runnable_dask.config import DEFAULT_LOG_FOLDER
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog import RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStorage, RunLogStore

TERMINAL_TYPES = ("success", "fail")
SUGGESTED_IDS = 5

__all__ = [
    "RunRow",
    "Span",
    "StepRow",
    "catalog",
    "format_seconds",
    "load_run",
    "metrics",
    "parameters",
    "runs",
    "steps",
    "to_dataframe",
]


class RunRow(TypedDict):
    """One run, as ``runs`` lists it."""

    run_id: str
    status: str
    tag: str
    start: datetime | None
    end: datetime | None
    duration: float | None  # seconds


class StepRow(TypedDict):
    """One step at any depth; a composite's times span its branches."""

    run_id: str
    step: str  # the internal name, e.g. ``sweep.random_forest.grid.max_depth=4.fit``
    name: str
    type: str
    status: str
    attempts: int
    start: datetime | None
    end: datetime | None
    duration: float | None  # seconds
    metrics: dict[str, Any]  # of the last attempt
    message: str
    cached_from: str | None  # the run whose cached outputs the step reused; None: it ran


class ParameterRow(TypedDict):
    """One of the run's final parameters; a pickled one shows its name, not its value."""

    run_id: str
    parameter: str
    kind: str
    value: Any


class MetricRow(TypedDict):
    """One metric recorded by a step's last attempt."""

    run_id: str
    step: str
    metric: str
    value: Any


Store = str | os.PathLike[str] | RunLogStorage
"""Where runs are read from: a folder or fsspec URL of run logs, or an opened store."""


def open_store(store: Store) -> RunLogStorage:
    """``store`` itself if it is one, else the run logs kept at that folder or URL."""
    return RunLogStore(store) if isinstance(store, (str, os.PathLike)) else store


def load_run(run_id: str, log_folder: Store = DEFAULT_LOG_FOLDER) -> RunLog:
    """The run log of ``run_id``; an unknown id is refused, naming the recent ones."""
    store = open_store(log_folder)
    try:
        return store.read(run_id)
    except RunLogNotFoundError:
        recent = store.run_ids(SUGGESTED_IDS)
        hint = f"; recent runs: {', '.join(recent)}" if recent else "; it holds no run logs"
        raise RunLogNotFoundError(f"no run {run_id!r} in {_where(log_folder)}{hint}") from None


def runs(log_folder: Store = DEFAULT_LOG_FOLDER, limit: int | None = None) -> list[RunRow]:
    """The ``limit`` most recently written runs, newest start first.

    A big map's items are not parsed (their times are found in their JSON); a log that
    cannot be read is listed with status ``UNREADABLE``.
    """
    store = open_store(log_folder)
    rows = [_run_row(store, run_id) for run_id in store.run_ids(limit)]
    return sorted(rows, key=_newest_first, reverse=True)


def _where(store: Store) -> str:
    return os.fspath(store) if isinstance(store, (str, os.PathLike)) else store.location


def steps(run_log: RunLog) -> list[StepRow]:
    """Every step the pipeline defines, branches included, in recorded order.

    The ``success`` and ``fail`` nodes that end each pipeline and branch are left out.
    """
    rows: list[StepRow] = []
    for step in run_log.walk():
        if step.step_type in TERMINAL_TYPES:
            continue
        span = Span.of(attempt_times([step]))
        rows.append(
            StepRow(
                run_id=run_log.run_id,
                step=step.internal_name,
                name=step.name,
                type=step.step_type,
                status=step.status,
                attempts=len(step.attempts),
                start=span.start,
                end=span.end,
                duration=span.seconds,
                metrics=dict(step.attempts[-1].user_defined_metrics) if step.attempts else {},
                message=step.message,
                cached_from=step.attempts[-1].cached_from if step.attempts else None,
            )
        )
    return rows


def parameters(run_log: RunLog) -> list[ParameterRow]:
    """The run's final parameters, in recorded order."""
    return [
        ParameterRow(run_id=run_log.run_id, parameter=name, kind=record.kind, value=record.value)
        for name, record in run_log.parameters.items()
    ]


def metrics(run_log: RunLog) -> list[MetricRow]:
    """Every metric every step recorded (its last attempt's), in recorded order."""
    return step_metrics(run_log.run_id, run_log.walk())


def step_metrics(run_id: str, steps: Iterable[StepLog]) -> list[MetricRow]:
    """The metrics ``steps`` recorded (each one's last attempt's), in their order: for a
    summary that lists only some steps (a large map's first items)."""
    return [
        MetricRow(run_id=run_id, step=step.internal_name, metric=name, value=value)
        for step in steps
        if step.attempts
        for name, value in step.attempts[-1].user_defined_metrics.items()
    ]


def catalog(run_log: RunLog) -> RunCatalog:
    """The run's catalog (its files, step logs, executed notebooks, report).

    A relative catalog location is taken from the folder the run was launched in, so the
    catalog is found from anywhere.
    """
    config = run_log.run_config.get("catalog", {}).get("config", {})
    location = str(config.get("catalog_location", ".catalog"))
    if "://" not in location:
        launched_in = run_log.run_config.get("launch", {}).get("cwd", "")
        location = os.path.abspath(os.path.join(launched_in or os.getcwd(), location))
    return RunCatalog(location, run_log.run_id)


def to_dataframe(rows: Iterable[dict[str, Any]]) -> Any:
    """The rows as a ``pandas.DataFrame``, one column per key."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "to_dataframe needs pandas, which is not installed: pip install pandas "
            "(the rows themselves are plain dicts and need nothing)"
        ) from exc
    return pandas.DataFrame(list(rows))


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
                starts.append(start)
            if end:
                ends.append(end)
        # Recorded times are ISO text in one time zone: the text orders them.
        first, last = min(starts, default=None), max(ends, default=None)
        return cls(
            datetime.fromisoformat(first) if first else None,
            datetime.fromisoformat(last) if last else None,
        )

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


def run_span(run_log: RunLog) -> Span:
    """When the run started and when it ended.

    Top-level steps run one after another and the terminal comes last, so the first step
    that has attempts starts before anything after it, and a terminal reached ends after
    everything: only the composites before that first step are walked. Gathering the
    times of a map of 100,000 items from their records took 0.5 s of ``runs`` and
    ``show``. A run without a terminal (running, or stopped) has every attempt counted.
    """
    steps = list(run_log.steps.values())
    if not any(step.step_type in TERMINAL_TYPES and step.attempts for step in steps):
        return Span.of(attempt_times(steps))
    first = next(at for at, step in enumerate(steps) if step.attempts)
    top = ((a.start_time, a.end_time) for step in steps[first:] for a in step.attempts)
    return Span.of(itertools.chain(attempt_times(steps[:first]), top))


def attempt_times(steps: Iterable[StepLog]) -> Iterator[tuple[str, str]]:
    """(start, end) of every attempt at or below ``steps``."""
    pending = list(steps)
    while pending:
        step = pending.pop()
        yield from ((a.start_time, a.end_time) for a in step.attempts)
        if not isinstance(step.branches, PackedBranches):
            pending.extend(s for b in step.branches.values() for s in b.steps.values())
            continue
        yield step.branches.packed_times()  # a map's finished items: known to their packs
        pending.extend(s for b in step.branches.live_values() for s in b.steps.values())


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


def _run_row(store: RunLogStorage, run_id: str) -> RunRow:
    """Read as the store reads it: a big map's items stay packed, their times found in
    their JSON (parsing a log of 100,000 items whole took seconds and a gigabyte)."""
    try:
        run_log = store.read(run_id)
        span = run_span(run_log)
    except (OSError, ValueError, AttributeError, TypeError, RunLogNotFoundError):
        return RunRow(
            run_id=run_id, status="UNREADABLE", tag="", start=None, end=None, duration=None
        )
    return RunRow(
        run_id=run_log.run_id,
        status=run_log.status,
        tag=run_log.tag,
        start=span.start,
        end=span.end,
        duration=span.seconds,
    )


def _newest_first(row: RunRow) -> float:
    """A run not started yet sorts as the newest."""
    return row["start"].timestamp() if row["start"] else float("inf")
