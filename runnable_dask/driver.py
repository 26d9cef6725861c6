"""Drive one run: configuration, plan, run id, executor, graph, events, run log, summary.

This is the only process that writes the run log. It lowers the plan, submits the graph
part by part (a map's iterations once its list is known), and records the events tasks
report until the root's end is known.
"""

from __future__ import annotations

import os
import queue
import subprocess
import time
from typing import Any

from runnable_dask.announce import RunAnnouncer
from runnable_dask.claim import claim, launch_record
from runnable_dask.config import CONFIGURATION_ENV, Configuration, load_configuration
from runnable_dask.console import RunConsole
from runnable_dask.exceptions import ExecutionFailedError, RunnableDaskError
from runnable_dask.executors import Executor, Resolved, open_executor
from runnable_dask.executors.report import PerformanceReport, performance_report
from runnable_dask.feed import GraphFeed
from runnable_dask.lower import Lowering
from runnable_dask.mocking import mock_patches
from runnable_dask.parameters import load_parameters
from runnable_dask.plan import Plan, build_plan
from runnable_dask.recorder import RunRecorder
from runnable_dask.run_report import report_at_end
from runnable_dask.runtime import checkpoint
from runnable_dask.runtime.attempt import log_name, now, task_environment
from runnable_dask.runtime.checkpoint import InProcessCheckpoints
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.tokens import Param, summarise
from runnable_dask.sdk import Pipeline
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog import ParameterRecord, RunLog
from runnable_dask.stores.runlog_store import RunLogStore

RUN_ID_ENV = "RUNNABLE_RUN_ID"
PARAMETERS_ENV = "RUNNABLE_PARAMETERS_FILE"
STRAGGLER_WAIT = 2.0


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
    plan = build_plan(pipeline)
    parameters_file = parameters_file or os.environ.get(PARAMETERS_ENV, "")
    store = RunLogStore(config.run_log_store.config.log_folder)
    run_log, params, resumed = _open_run_log(
        store, plan, config, run_id, tag, configuration_file, parameters_file
    )
    catalog = RunCatalog(_absolute(config.catalog.config.catalog_location), run_log.run_id)
    console = RunConsole()
    recorder = RunRecorder(run_log, plan, store, console, _code_identities())
    log_path = str(store.path(run_log.run_id))
    dashboard = None
    broken: Exception | None = None
    events: queue.SimpleQueue = queue.SimpleQueue()
    lowering: Lowering | None = None
    try:
        with open_executor(config.pipeline_executor, events) as executor:
            dashboard = executor.dashboard_link
            console.run_started(run_log.run_id, executor.description, dashboard, log_path)
            if resumed:
                console.resumed(run_log.run_id)
            recorder.checkpoints = _checkpoints(executor, catalog, resumed)
            ctx = RunContext(
                run_id=run_log.run_id,
                catalog_location=catalog.location,
                reporter=executor.reporter(run_log.run_id, events),
                patches=mock_patches(config.pipeline_executor, plan),
                project_dir=os.getcwd(),
                secrets=_secrets(plan),
                checkpoints=recorder.checkpoints,
            )
            lowering = Lowering(plan, ctx)
            recorder.announcer = RunAnnouncer(executor.client, run_log.run_id)
            recorder.announcer.started(plan, log_path, catalog.url(), now())
            # In-process tasks find the run id set for the whole run, not set per step.
            with task_environment({RUN_ID_ENV: run_log.run_id} if executor.in_process else {}):
                _run_graph(executor, events, lowering, recorder, params, catalog)
    except Exception as exc:  # the cluster or the graph broke, not a step
        keys = lowering.step_keys() if lowering is not None else {}
        recorder.fail_run(_describe(exc), keys.get(str(getattr(exc, "task", ""))))
        if isinstance(exc, RunnableDaskError):
            raise
        broken = exc
    except BaseException as exc:  # an interrupt: record it, then let it stop the program
        recorder.fail_run(_describe(exc))
        raise
    finally:
        recorder.close()
        if config.catalog.config.run_report:
            run_log.run_config["run_report"] = report_at_end(run_log)
        console.run_finished(
            run_log,
            time.monotonic() - began,
            log_path,
            catalog.url(),
            dashboard,
            step_log=lambda internal_name: catalog.url(log_name(internal_name)),
            log_tail=lambda internal_name: _log_tail(catalog, internal_name),
        )
    if broken is not None:
        failures = run_log.failures() or [("run", _describe(broken))]
        raise ExecutionFailedError(run_log.run_id, failures, log_path) from broken
    if run_log.status != "SUCCESS":
        raise ExecutionFailedError(run_log.run_id, run_log.failures(), log_path)
    return run_log


def _open_run_log(
    store: RunLogStore,
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
) -> None:
    """Drive the run, with Dask's performance report kept in the catalog if asked for."""
    client = executor.client if executor.report_performance else None
    report = PerformanceReport()
    try:
        with performance_report(client, catalog, _calling_code(recorder.run_log)) as report:
            _drive(events, GraphFeed(executor), lowering, recorder, params)
    finally:
        if report.url:
            recorder.run_log.run_config["performance_report"] = report.url


def _checkpoints(
    executor: Executor, catalog: RunCatalog, resumed: bool
) -> InProcessCheckpoints | None:
    """Where finished tasks keep their outcomes: handed to this process when they run in
    it; else each in its own file, where a resumed run's batched ones are unpacked to."""
    if executor.in_process:
        return InProcessCheckpoints(catalog, checkpoint.load_all(catalog) if resumed else {})
    if resumed:
        checkpoint.unpack_batches(catalog)
    return None


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
) -> None:
    """Submit the graph part by part and record events until the root's end is known;
    then wait briefly for events that are still on their way."""
    part, end_key = lowering.first(params)
    feed.add(part, watch={end_key})
    while True:
        try:
            item = events.get(timeout=recorder.min_interval)
        except queue.Empty:
            recorder.idle()
            continue
        if not isinstance(item, Resolved):
            recorder.apply(item)
            continue
        value = item.outcome()  # raises what Dask raised, if the graph itself broke
        if item.key == end_key:
            break
        frontier = feed.frontier(item.key)
        if frontier.kind == "map" and value:
            recorder.expand_map(frontier.node.internal_name, frontier.call.items, value)
        feed.add(lowering.expand(frontier, value))
        feed.expanded(frontier)
    deadline = time.monotonic() + STRAGGLER_WAIT
    while recorder.unfinished and time.monotonic() < deadline:
        try:
            item = events.get(timeout=0.05)
        except queue.Empty:
            continue
        if not isinstance(item, Resolved):
            recorder.apply(item)
    while True:
        try:
            item = events.get_nowait()
        except queue.Empty:
            return
        if not isinstance(item, Resolved):
            recorder.apply(item)


def _log_tail(catalog: RunCatalog, internal_name: str, lines: int = 8) -> list[str]:
    """The last lines a failed step printed, read back from the catalog."""
    data = catalog.read_bytes(log_name(internal_name)) or b""
    return data.decode("utf-8", "replace").rstrip("\n").splitlines()[-lines:]


def _secrets(plan: Plan) -> dict[str, str]:
    """The values of the secrets tasks name, from this process's environment (a secret
    set only on the workers is found there when the task runs)."""
    names = {name for _, node in plan.nodes() for name in getattr(node.step, "secrets", [])}
    return {name: os.environ[name] for name in names if name in os.environ}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if "scheduler-connection-lost" in text:  # Dask names the lost key, which says little
        return "Dask lost the connection to the scheduler; steps running then did not report"
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
