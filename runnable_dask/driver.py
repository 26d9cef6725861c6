"""Drive one run: configuration, plan, run id, executor, graph, events, run log, summary.

This is the only process that writes the run log. It lowers the whole plan to one
graph, submits it, and records the events tasks report until the graph ends.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import time
from typing import Any

from runnable_dask.config import Configuration, load_configuration
from runnable_dask.console import RunConsole
from runnable_dask.exceptions import (
    ConfigurationError,
    ExecutionFailedError,
    RunLogExistsError,
    RunnableDaskError,
)
from runnable_dask.executors import Finished, open_executor
from runnable_dask.lower import lower, step_keys
from runnable_dask.parameters import load_parameters
from runnable_dask.plan import build_plan
from runnable_dask.recorder import RunRecorder
from runnable_dask.run_id import generate_run_id
from runnable_dask.runtime.attempt import log_name
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.tokens import summarise
from runnable_dask.sdk import Pipeline
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog import ParameterRecord, RunLog
from runnable_dask.stores.runlog_store import RunLogStore

RUN_ID_ENV = "RUNNABLE_RUN_ID"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
STRAGGLER_WAIT = 2.0


def execute(
    pipeline: Pipeline,
    configuration_file: str = "",
    run_id: str = "",
    tag: str = "",
    parameters_file: str = "",
) -> RunLog:
    """Run ``pipeline``; return its run log, or raise ``ExecutionFailedError`` on FAIL."""
    began = time.monotonic()
    config = load_configuration(configuration_file)
    plan = build_plan(pipeline)
    params = load_parameters(parameters_file)
    store = RunLogStore(config.run_log_store.config.log_folder)
    run_log = _claim_run_log(
        store,
        run_id or os.environ.get(RUN_ID_ENV, ""),
        RunLog(
            run_id="",
            dag_hash=plan.dag_hash,
            tag=tag,
            status="PROCESSING",
            parameters={
                name: ParameterRecord.model_validate(record)
                for name, record in summarise(params).items()
            },
            run_config=_run_config(config),
        ),
    )
    catalog = RunCatalog(_absolute(config.catalog.config.catalog_location), run_log.run_id)
    console = RunConsole()
    recorder = RunRecorder(run_log, plan, store, console, _code_identities())
    log_path = str(store.path(run_log.run_id))
    dashboard = None
    broken: Exception | None = None
    try:
        with open_executor(config.pipeline_executor) as executor:
            dashboard = executor.dashboard_link
            console.run_started(run_log.run_id, executor.description, dashboard, log_path)
            events: queue.SimpleQueue = queue.SimpleQueue()
            ctx = RunContext(
                run_id=run_log.run_id,
                catalog_location=catalog.location,
                report=executor.reporter(run_log.run_id, events),
            )
            graph, end_key = lower(plan, ctx, params)
            executor.submit(graph, end_key, events)
            _record_until_finished(events, recorder)
    except Exception as exc:  # the cluster or the graph broke, not a step
        culprit = step_keys(plan, run_log.run_id).get(str(getattr(exc, "task", "")))
        recorder.fail_run(_describe(exc), culprit)
        if isinstance(exc, RunnableDaskError):
            raise
        broken = exc
    except BaseException as exc:  # an interrupt: record it, then let it stop the program
        recorder.fail_run(_describe(exc))
        raise
    finally:
        recorder.close()
        console.run_finished(
            run_log,
            time.monotonic() - began,
            log_path,
            catalog.url(),
            dashboard,
            step_log=lambda internal_name: catalog.url(log_name(internal_name)),
        )
    if broken is not None:
        failures = run_log.failures() or [("run", _describe(broken))]
        raise ExecutionFailedError(run_log.run_id, failures, log_path) from broken
    if run_log.status != "SUCCESS":
        raise ExecutionFailedError(run_log.run_id, run_log.failures(), log_path)
    return run_log


def _record_until_finished(events: queue.SimpleQueue, recorder: RunRecorder) -> None:
    """Apply events until the graph ends; then wait briefly for any that are still late."""
    while True:
        try:
            item = events.get(timeout=recorder.min_interval)
        except queue.Empty:
            recorder.idle()
            continue
        if isinstance(item, Finished):
            break
        recorder.apply(item)
    item.outcome()  # raises what Dask raised, if the graph itself broke
    deadline = time.monotonic() + STRAGGLER_WAIT
    while recorder.unfinished and time.monotonic() < deadline:
        try:
            recorder.apply(events.get(timeout=0.05))
        except queue.Empty:
            continue
    while True:
        try:
            recorder.apply(events.get_nowait())
        except queue.Empty:
            return


def _claim_run_log(store: RunLogStore, requested: str, template: RunLog) -> RunLog:
    """Create the run log under ``requested`` or, if empty, a fresh generated id."""
    if requested and not _RUN_ID.fullmatch(requested):
        raise ConfigurationError(
            f"run id {requested!r} cannot name a file: use letters, digits, '.', '_' and "
            "'-', starting with a letter or digit (e.g. 'sweep-2026-11-28')"
        )
    if requested:
        run_log = template.model_copy(update={"run_id": requested})
        store.create(run_log)
        return run_log
    while True:
        run_log = template.model_copy(update={"run_id": generate_run_id()})
        try:
            store.create(run_log)
        except RunLogExistsError:
            continue
        return run_log


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _absolute(location: str) -> str:
    """A local catalog folder as an absolute path: workers may run in another folder."""
    return location if "://" in location else os.path.abspath(location)


def _run_config(config: Configuration) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


def _code_identities() -> list[dict[str, Any]]:
    """The git commit the run's code came from, as runnable records it (if in git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return []
    dirty = [line[3:] for line in changed if line.strip()]
    return [
        {
            "code_identifier": commit,
            "code_identifier_type": "git",
            "code_identifier_dependable": not dirty,
            "code_identifier_url": "",
            "code_identifier_message": "changes found in " + ", ".join(dirty[:20]) if dirty else "",
        }
    ]
