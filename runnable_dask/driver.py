"""Drive one run: configuration, plan, run id, executor, graph, events, run log, summary.

This is the only process that writes the run log. It lowers the plan, submits the graph
part by part (a map's iterations once its list is known), and records the events tasks
report until the root's end is known.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import time
from typing import Any

from runnable_dask._excepthook import quiet_interrupt
from runnable_dask.claim import claim, launch_record
from runnable_dask.config import (
    CONFIGURATION_ENV,
    Configuration,
    load_configuration,
)
from runnable_dask.console import RunConsole
from runnable_dask.exceptions import ExecutionFailedError, RunnableDaskError
from runnable_dask.executors import Executor, Resolved, open_executor
from runnable_dask.executors.early import early_start
from runnable_dask.executors.kernels import warm_kernels
from runnable_dask.executors.report import PerformanceReport
from runnable_dask.feed import GraphFeed
from runnable_dask.frozen_heap import frozen_heap
from runnable_dask.interrupts import Interrupts, noted_interrupts
from runnable_dask.log_writer import LogWriter
from runnable_dask.lower import Lowering
from runnable_dask.mocking import mock_patches
from runnable_dask.parameters import load_parameters
from runnable_dask.plan import Plan, build_plan, secret_names
from runnable_dask.plan_shape import PlanShape
from runnable_dask.recorder import RunRecorder
from runnable_dask.run_id import RUN_ID_ENV
from runnable_dask.run_report import report_at_end
from runnable_dask.runtime import step_cache
from runnable_dask.runtime.composites import MapItems
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.events import Event, Message
from runnable_dask.runtime.tokens import Param, summarise
from runnable_dask.sdk import Pipeline
from runnable_dask.step_logs import log_name
from runnable_dask.step_progress import StepProgress
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog import ParameterRecord, RunLog
from runnable_dask.stores.runlog_store import RunLogStorage
from runnable_dask.timestamps import now
from runnable_dask.tracking.hub import TrackerHub, load_trackers

PARAMETERS_ENV = "RUNNABLE_PARAMETERS_FILE"
STRAGGLER_WAIT = 2.0


@frozen_heap()
def execute(
    pipeline: Pipeline,
    configuration_file: str = "",
    run_id: str = "",
    tag: str = "",
    parameters_file: str = "",
) -> RunLog:
    """Run ``pipeline``; return its run log, or raise ``ExecutionFailedError`` on FAIL.

    Given the id of a run that failed, resume it: only what did not finish runs again.
    """
    began = time.monotonic()
    config = load_configuration(configuration_file)
    trackers = load_trackers(config.tracking)
    plan = build_plan(pipeline, step_cache.identifier(config))
    secrets = _secrets(plan)  # read before a cluster starts without them
    with early_start(config.pipeline_executor, plan):  # the run's own cluster starts meanwhile
        store = config.run_log_store.config.open()
        run_log, params, resumed = _open_run_log(
            store,
            plan,
            config,
            run_id,
            tag,
            configuration_file,
            parameters_file or os.environ.get(PARAMETERS_ENV, ""),
        )
        catalog = config.catalog.config.open(run_log.run_id)
        console = RunConsole()
        recorder = _recorder(run_log, plan, store, console)
        tracking = TrackerHub(trackers, console.note)
        log_path = store.url(run_log.run_id)
    dashboard = None
    broken: Exception | None = None
    events: queue.SimpleQueue = queue.SimpleQueue()
    lowering: Lowering | None = None
    interrupted: BaseException | None = None
    try:
        with (
            noted_interrupts() as interrupts,
            open_executor(config.pipeline_executor, events, plan) as executor,
        ):
            dashboard = executor.dashboard_link
            _announce(console, executor, run_log.run_id, log_path, resumed)
            _start_tracking(tracking, recorder, resumed, catalog, log_path)
            recorder.writer.checkpoints = executor.checkpoints(catalog, resumed)
            ctx = _context(executor, config, plan, recorder, catalog, events, secrets)
            lowering = Lowering(plan, ctx)
            recorder.announcer = executor.announcer(run_log.run_id)
            recorder.announcer.started(plan, log_path, catalog.url(), now())
            with (
                executor.run_scope(run_log.run_id),
                warm_kernels(executor, plan, lowering.ctx),
            ):
                _run_graph(executor, events, lowering, recorder, params, catalog, interrupts)
    except Exception as exc:  # the cluster or the graph broke, not a step
        keys = lowering.step_keys() if lowering is not None else {}
        recorder.fail_run(_describe(exc), keys.get(str(getattr(exc, "task", ""))))
        if isinstance(exc, RunnableDaskError):
            raise
        broken = exc
    except BaseException as exc:  # an interrupt: record it, then let it stop the program
        recorder.fail_run(_describe(exc))
        interrupted = exc
        raise
    finally:
        _close(config, recorder, tracking, store, catalog, console)
        console.run_finished(
            run_log,
            time.monotonic() - began,
            log_path,
            catalog.url(),
            dashboard,
            step_log=lambda internal_name: _existing_log(catalog, internal_name),
            log_tail=lambda internal_name: _log_tail(catalog, internal_name),
        )
        if interrupted is not None:  # the summary said it all: no traceback after it
            quiet_interrupt(interrupted, run_log.run_id)
    _raise_unless_succeeded(run_log, broken, log_path)
    return run_log


def _recorder(
    run_log: RunLog, plan: Plan, store: RunLogStorage, console: RunConsole
) -> RunRecorder:
    """The run log's three keepers: the recorder builds it from events, the progress
    shows it on the console, the writer stores it."""
    shape = PlanShape.of(plan)
    progress = StepProgress(console, plan, shape)
    return RunRecorder(run_log, shape, progress, LogWriter(run_log, store), _code_identities())


def _raise_unless_succeeded(run_log: RunLog, broken: Exception | None, log_path: str) -> None:
    """``ExecutionFailedError`` for a run that failed, naming what failed."""
    if broken is not None:
        failures = run_log.failures() or [("run", _describe(broken))]
        raise ExecutionFailedError(run_log.run_id, failures, log_path) from broken
    if run_log.status != "SUCCESS":
        raise ExecutionFailedError(run_log.run_id, run_log.failures(), log_path)


def _announce(
    console: RunConsole, executor: Executor, run_id: str, log_path: str, resumed: bool
) -> None:
    """The run's first lines: where it runs, its dashboard and run log; a resume said."""
    console.run_started(run_id, executor.description, executor.dashboard_link, log_path)
    executor.notices.listen(console.note)
    if resumed:
        console.resumed(run_id)


def _close(
    config: Configuration,
    recorder: RunRecorder,
    tracking: TrackerHub,
    store: RunLogStorage,
    catalog: RunCatalog,
    console: RunConsole,
) -> None:
    """The run's end: the step cache's last entries, the run log's last write, the
    trackers' last hook, the run id let go of, and the run's report if asked for."""
    for step, warning in step_cache.finish_writes():
        console.step_warning(step, warning)
    try:
        recorder.close()
        _finish_tracking(tracking, recorder.run_log, catalog, store)
    finally:
        store.release(recorder.run_log.run_id)
    if getattr(config.catalog.config, "run_report", False):  # a catalog type's option
        recorder.run_log.run_config["run_report"] = report_at_end(recorder.run_log)


def _context(
    executor: Executor,
    config: Configuration,
    plan: Plan,
    recorder: RunRecorder,
    catalog: RunCatalog,
    events: queue.SimpleQueue,
    secrets: dict[str, str],
) -> RunContext:
    """What every task of the run is given."""
    run_id = recorder.run_log.run_id
    return RunContext(
        run_id=run_id,
        catalog_location=catalog.location,
        reporter=executor.reporter(run_id, events),
        patches=mock_patches(config.pipeline_executor, plan),
        project_dir=os.getcwd(),
        secrets=secrets,
        checkpoints=recorder.writer.checkpoints,
        cache_location=cache_location(config),
    )


def _open_run_log(
    store: RunLogStorage,
    plan: Plan,
    config: Configuration,
    run_id: str,
    tag: str,
    configuration_file: str,
    parameters_file: str,
) -> tuple[RunLog, dict[str, Param], bool]:
    """A new run log, or the failed run's to resume; the initial parameters; which."""
    run_config = _run_config(config)
    run_config["launch"] = launch_record(
        os.environ.get(CONFIGURATION_ENV) or configuration_file, parameters_file
    )
    params = load_parameters(parameters_file)
    template = RunLog(
        run_id="",
        dag_hash=plan.dag_hash,
        tag=tag,
        status="PROCESSING",
        parameters={
            name: ParameterRecord.model_validate(record)
            for name, record in summarise(params).items()
        },
        run_config=run_config,
    )
    return claim(store, run_id or os.environ.get(RUN_ID_ENV, ""), template, params)


def _run_graph(
    executor: Executor,
    events: queue.SimpleQueue,
    lowering: Lowering,
    recorder: RunRecorder,
    params: dict[str, Param],
    catalog: RunCatalog,
    interrupts: Interrupts,
) -> None:
    """Drive the run, with Dask's performance report kept in the catalog if asked for."""
    report = PerformanceReport()
    try:
        with executor.performance_report(catalog, _calling_code(recorder.run_log)) as report:
            _drive(events, GraphFeed(executor), lowering, recorder, params, interrupts)
    except BaseException as exc:  # the run stops early: so does what its steps started
        if isinstance(exc, Exception):  # what siblings finished stays recorded
            _wait_for_stragglers(events, recorder)
        recorder.processes_ended(executor.stop_processes(recorder.run_log.run_id))
        raise
    finally:
        if report.url:
            recorder.run_log.run_config["performance_report"] = report.url


def _calling_code(run_log: RunLog) -> str:
    """What the performance report names as the code that made it: the run and its file."""
    entry = run_log.run_config.get("launch", {}).get("entry") or "an interactive session"
    return f"runnable_dask run {run_log.run_id} of {entry}"


def _drive(
    events: queue.SimpleQueue,
    feed: GraphFeed,
    lowering: Lowering,
    recorder: RunRecorder,
    params: dict[str, Any],
    interrupts: Interrupts,
) -> None:
    """Submit the graph part by part and record events until the root's end is known;
    then wait briefly for events that are still on their way."""
    part, end_key = lowering.first(params)
    feed.add(part, watch={end_key})
    while True:
        interrupts.raise_if_received()  # one that Python dropped on its way
        try:
            item = events.get(timeout=recorder.writer.min_interval)
        except queue.Empty:  # draw what the console held back, write what is pending
            recorder.progress.idle()
            recorder.writer.idle()
            continue
        if not isinstance(item, Resolved):
            _record(recorder, item)
            continue
        try:
            value = item.outcome()  # raises what Dask raised, if the graph itself broke
        except Exception as exc:  # name the step whose task Dask could not run
            if getattr(exc, "task", None) is None:
                with contextlib.suppress(AttributeError):
                    exc.task = feed.executor.blamed(item.key)  # type: ignore[attr-defined]
            raise
        if item.key == end_key:
            break
        frontier = feed.frontier(item.key)
        if isinstance(value, MapItems):
            value = value.values
        if frontier.kind == "map" and value:
            recorder.expand_map(frontier.node.internal_name, frontier.call.items, value)
        for expansion in lowering.expand(frontier, value):
            feed.add(expansion)
        feed.expanded(frontier)
    _wait_for_stragglers(events, recorder)


def _wait_for_stragglers(events: queue.SimpleQueue, recorder: RunRecorder) -> None:
    """Record the events still on their way from steps that were running (briefly)."""
    deadline = time.monotonic() + STRAGGLER_WAIT
    while recorder.unfinished and time.monotonic() < deadline:
        try:
            item = events.get(timeout=0.05)
        except queue.Empty:
            continue
        if not isinstance(item, Resolved):
            _record(recorder, item)
    while True:
        try:
            item = events.get_nowait()
        except queue.Empty:
            return
        if not isinstance(item, Resolved):
            _record(recorder, item)


def _record(recorder: RunRecorder, item: Event | Message) -> None:
    """Record an event, or each event of a task's message."""
    if isinstance(item, Message):
        for event in item.events():
            recorder.apply(event)
    else:
        recorder.apply(item)


def _start_tracking(
    tracking: TrackerHub, recorder: RunRecorder, resumed: bool, catalog: RunCatalog, log: str
) -> None:
    """The trackers' first hook; then each step's record goes to them as it arrives."""
    if tracking:
        tracking.run_started(recorder.run_log, resumed, catalog, log)
        recorder.step_listener = tracking.step_listener(recorder.run_log.run_id)


def _finish_tracking(
    tracking: TrackerHub, run_log: RunLog, catalog: RunCatalog, store: RunLogStorage
) -> None:
    """The trackers' last hook; their errors, if any, kept in the run log."""
    if not tracking:
        return
    tracking.run_finished(run_log, catalog)
    if tracking.errors:
        run_log.run_config["tracking_errors"] = tracking.errors
        store.write(run_log)


def _existing_log(catalog: RunCatalog, internal_name: str) -> str | None:
    """Where a step's log is, if it has one (a step stopped mid-run or that printed
    nothing has none)."""
    relative = log_name(internal_name)
    return catalog.url(relative) if catalog.read_bytes(relative) is not None else None


def _log_tail(catalog: RunCatalog, internal_name: str, lines: int = 8) -> list[str]:
    """The last lines a failed step printed, read back from the catalog."""
    data = catalog.read_bytes(log_name(internal_name)) or b""
    return data.decode("utf-8", "replace").rstrip("\n").splitlines()[-lines:]


def _secrets(plan: Plan) -> dict[str, str]:
    """The values of the secrets tasks name, from this process's environment (a secret
    set only on the workers is found there when the task runs)."""
    return {name: os.environ[name] for name in secret_names(plan) if name in os.environ}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if "scheduler-connection-lost" in text:  # Dask names the lost key, which says little
        return "Dask lost the connection to the scheduler; steps running then did not report"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def cache_location(config: Configuration) -> str:
    """Where the step cache is: the configuration's location, else beside the catalog."""
    location = config.cache.location
    if location:
        return location if "://" in location else os.path.abspath(location)
    return step_cache.default_location(config.catalog.config.open("").location)


def _run_config(config: Configuration) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


def _code_identities() -> list[dict[str, Any]]:
    """The git commit the run's code came from, as runnable records it (if in git).

    One ``git status`` gives both the commit and the changed files: a second git process
    was a tenth of a run's fixed cost on a running cluster.
    """
    try:
        lines = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
    if not commit or commit == "(initial)":
        return []
    dirty = [_changed_path(line) for line in lines if not line.startswith("#")]
    return [
        {
            "code_identifier": commit,
            "code_identifier_type": "git",
            "code_identifier_dependable": not dirty,
            "code_identifier_url": "",
            "code_identifier_message": "changes found in " + ", ".join(dirty[:20]) if dirty else "",
        }
    ]


def _changed_path(line: str) -> str:
    """The path in a line of ``git status --porcelain=v2`` (ordinary, renamed, unmerged or
    untracked entry)."""
    fields = {"1": 8, "2": 9, "u": 10}.get(line[:1])
    path = line.split(" ", fields)[fields] if fields else line[2:]
    return path.split("\t")[0]
