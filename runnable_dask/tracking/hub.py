"""The trackers of one run: loaded from the configuration, called safely.

Each ``tracking`` entry names a tracker by its entry point in the group
``runnable_dask.trackers`` (``mlflow``) or by ``package.module:Class``, and gives the
keyword arguments it is built with. A tracker that cannot be found or built stops the run
before it starts (a configuration error); one whose hook raises is reported and skipped
for that call, so a tracking server that is down never fails a pipeline.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from runnable_dask.config import TrackerSpec
from runnable_dask.exceptions import ConfigurationError
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog import ParameterRecord, RunLog, StepLog
from runnable_dask.tracking import Tracker

GROUP = "runnable_dask.trackers"


def load_trackers(specs: Iterable[TrackerSpec]) -> list[Tracker]:
    """A tracker for each entry of the configuration's ``tracking`` section."""
    return [_build(spec) for spec in specs]


def _build(spec: TrackerSpec) -> Tracker:
    cls = _find(spec.type)
    try:
        tracker = cls(**spec.config)
    except ImportError as exc:
        raise ConfigurationError(
            f"tracking: {spec.type} needs a package that is not installed ({exc}); "
            f"pip install 'runnable_dask[{spec.type}]'"
        ) from None
    except Exception as exc:
        raise ConfigurationError(
            f"tracking: {spec.type} could not be set up with {spec.config!r} "
            f"({type(exc).__name__}: {exc}); check its config"
        ) from None
    if not isinstance(tracker, Tracker):
        raise ConfigurationError(
            f"tracking: {spec.type} is a {type(tracker).__name__}, not a "
            "runnable_dask.tracking.Tracker; subclass Tracker"
        )
    return tracker


def _find(name: str) -> Callable[..., Any]:
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"tracking: cannot load {name!r} ({type(exc).__name__}: {exc}); give an "
                "importable package.module:Class"
            ) from None
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigurationError(
            f"tracking: no tracker {name!r} (known: {known}); name one of them, or a "
            "package.module:Class"
        )
    try:
        return found[name].load()
    except ImportError as exc:
        raise ConfigurationError(
            f"tracking: {name} needs a package that is not installed ({exc}); "
            f"pip install 'runnable_dask[{name}]'"
        ) from None


class TrackerHub:
    """Calls every tracker's hooks; an error is reported through ``notice`` and kept."""

    def __init__(self, trackers: list[Tracker], notice: Callable[[str], None]) -> None:
        self.trackers = trackers
        self.notice = notice
        self.errors: list[str] = []
        self.seconds = 0.0
        """Time spent in hooks, for the record."""

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def call(self, hook: str, **fields: Any) -> None:
        began = time.monotonic()
        for tracker in self.trackers:
            try:
                getattr(tracker, hook)(**fields)
            except Exception as exc:
                text = f"{type(tracker).__name__}.{hook}: {type(exc).__name__}: {exc}"
                self.errors.append(text)
                self.notice(f"tracking {text} (the run goes on)")
        self.seconds += time.monotonic() - began

    def run_started(
        self, run_log: RunLog, resumed: bool, catalog: RunCatalog, log_path: str
    ) -> None:
        self.call(
            "run_started",
            run_id=run_log.run_id,
            tag=run_log.tag,
            parameters=values(run_log.parameters),
            dag_hash=run_log.dag_hash,
            resumed=resumed,
            catalog=catalog.url(),
            run_log_path=log_path,
        )

    def run_finished(self, run_log: RunLog, catalog: RunCatalog) -> None:
        self.call(
            "run_finished",
            run_id=run_log.run_id,
            status=run_log.status,
            parameters=values(run_log.parameters),
            run_log=run_log,
            catalog=catalog,
        )

    def step_listener(self, run_id: str) -> Callable[[StepLog, tuple[str, ...]], None]:
        """What the recorder calls with each step's final record."""
        return lambda step, branches: self.step_finished(run_id, step, branches)

    def step_finished(self, run_id: str, step: StepLog, branches: tuple[str, ...]) -> None:
        """A step's final record, as the hook's fields."""
        if step.step_type in ("success", "fail"):
            return
        first, last = (step.attempts[0], step.attempts[-1]) if step.attempts else (None, None)
        self.call(
            "step_finished",
            run_id=run_id,
            internal_name=step.internal_name,
            name=step.name,
            step_type=step.step_type,
            status=step.status,
            message=step.message,
            metrics=dict(last.user_defined_metrics) if last else {},
            inputs=values(last.input_parameters) if last else {},
            described=described(last.input_parameters) if last else {},
            outputs=values(last.output_parameters) if last else {},
            attempts=len(step.attempts),
            start_time=first.start_time if first else "",
            end_time=last.end_time if last else "",
            branches=branches,
        )


def values(records: dict[str, ParameterRecord]) -> dict[str, Any]:
    """Parameter records as name -> value; pickled values (recorded by name) left out."""
    return {name: r.value for name, r in records.items() if r.kind != "object"}


def described(records: dict[str, ParameterRecord]) -> dict[str, Any]:
    """Pickled parameters that are structured records (a dataclass or pydantic model, as
    a map's item often is) as their fields, name -> {field: value}."""
    return {
        name: json.loads(r.description)
        for name, r in records.items()
        if r.kind == "object" and r.description.startswith("{")
    }
