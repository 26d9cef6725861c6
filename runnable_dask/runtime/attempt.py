"""One attempt of one task: secrets, catalog, captured output, the task, its record.

Whatever the task does, :func:`run_attempt` returns; a failure becomes a FAIL record
whose message holds the exception's type and text, with the traceback in the step's log.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runnable_dask.runtime.capture import capture_output
from runnable_dask.runtime.tokens import Param, summarise
from runnable_dask.sdk import BaseTask, NotebookTask, PythonTask, ShellTask
from runnable_dask.stores.catalog import RunCatalog


@dataclass(slots=True)
class AttemptResult:
    """What one attempt produced: its run-log records and its new parameter values."""

    ok: bool
    attempt: dict[str, Any]
    outputs: dict[str, Param] = field(default_factory=dict)
    data_catalog: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    """What the task printed (its log), for the step cache."""


class MissingSecretError(Exception):
    """A secret the task names is not set where the task runs."""


def now() -> str:
    """A UTC timestamp as the run log stores it."""
    return datetime.now(timezone.utc).isoformat()


def attempt_record(
    start_time: str,
    params: dict[str, Param],
    outputs: dict[str, Param] | None = None,
    message: str = "",
    attempt_number: int = 1,
) -> dict[str, Any]:
    """An attempt as the run log stores it, ending now; a message means it failed."""
    outputs = outputs or {}
    return {
        "attempt_number": attempt_number,
        "start_time": start_time,
        "end_time": now(),
        "status": "FAIL" if message else "SUCCESS",
        "message": message,
        "input_parameters": summarise(params),
        "output_parameters": summarise(outputs),
        "user_defined_metrics": {n: p.value for n, p in outputs.items() if p.kind == "metric"},
        "retry_indicator": "",
        "code_identities": [],
    }


_environment_lock = threading.Lock()
_environment_users: dict[str, tuple[int, str | None]] = {}
"""Per name set by running tasks: how many of them set it, and its value before the first."""


@contextmanager
def task_environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables while a task runs, as runnable does (``RUNNABLE_RUN_ID``,
    a loop's index).

    The environment is the process's, shared by the tasks that run at once in it: each
    name is restored when the last task that set it ends, never while another still runs
    (two tasks that set one name to different values see the later value). A name that
    has its value already (the run id, during an in-process run) is left alone: setting
    and restoring one costs more than a trivial step.
    """
    with _environment_lock:
        names = [
            name
            for name, value in values.items()
            if name in _environment_users or os.environ.get(name) != value
        ]
        for name in names:
            count, before = _environment_users.get(name, (0, os.environ.get(name)))
            _environment_users[name] = (count + 1, before)
            if os.environ.get(name) != values[name]:
                os.environ[name] = values[name]
    try:
        yield
    finally:
        with _environment_lock:
            for name in names:
                count, before = _environment_users.pop(name)
                if count > 1:
                    _environment_users[name] = (count - 1, before)
                elif before is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = before


def log_name(internal_name: str) -> str:
    """Where a step's captured output is kept in the run's catalog."""
    return f"logs/{internal_name}.execution.log"


def run_attempt(
    task: BaseTask,
    internal_name: str,
    params: dict[str, Param],
    catalog: RunCatalog,
    start_time: str,
    attempt_number: int = 1,
    hidden: frozenset[str] = frozenset(),
) -> AttemptResult:
    """Run ``task`` once with ``params`` and describe the attempt.

    ``hidden`` names parameters left out of the attempt's record (a map's list, which
    is recorded once on the map rather than once per item).
    """
    outputs: dict[str, Param] = {}
    records: list[dict[str, Any]] = []
    message = ""
    with capture_output() as log:
        try:
            _check_secrets(task)
            if task.catalog is not None:
                records.extend(catalog.get(task.catalog.get))
            outputs = _dispatch(task, params, log, catalog, internal_name)
        except (Exception, SystemExit) as exc:  # every failure is recorded, none escapes
            message = f"{type(exc).__name__}: {exc}"
            log.write(_user_traceback(exc))
        finally:
            if task.catalog is not None and task.catalog.put:
                try:
                    records.extend(
                        catalog.put(
                            task.catalog.put, task.catalog.store_copy, require_match=not message
                        )
                    )
                except Exception as exc:
                    message = message or f"{type(exc).__name__}: {exc}"
                    log.write(traceback.format_exc())
    ok = not message
    output = log.getvalue()
    if output:  # most steps of a wide map print nothing: an empty file per step is waste
        catalog.write_text(log_name(internal_name), output)
    shown = {n: p for n, p in params.items() if n not in hidden}
    attempt = attempt_record(start_time, shown, outputs if ok else {}, message, attempt_number)
    return AttemptResult(
        ok=ok, attempt=attempt, outputs=outputs if ok else {}, data_catalog=records, output=output
    )


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the user's code down: our own frames above it say nothing."""
    trace = exc.__traceback__
    while trace is not None and trace.tb_frame.f_code.co_filename.startswith(_PACKAGE + os.sep):
        trace = trace.tb_next
    return "".join(traceback.format_exception(type(exc), exc, trace or exc.__traceback__))


def _check_secrets(task: BaseTask) -> None:
    missing = [name for name in task.secrets if name not in os.environ]
    if missing:
        raise MissingSecretError(
            f"secrets {missing} are not set in the environment where the task runs; "
            "export them before starting the run (and on the workers)"
        )


def _dispatch(
    task: BaseTask,
    params: dict[str, Param],
    log: Any,
    catalog: RunCatalog,
    internal_name: str,
) -> dict[str, Param]:
    if isinstance(task, PythonTask):
        from runnable_dask.runtime.python_task import run_python

        return run_python(task, params)
    if isinstance(task, ShellTask):
        from runnable_dask.runtime.shell_task import run_shell

        return run_shell(task, params, log)
    if isinstance(task, NotebookTask):
        from runnable_dask.runtime.notebook_task import run_notebook

        return run_notebook(task, params, log, catalog, internal_name)
    raise TypeError(f"no runner for {type(task).__name__}")
