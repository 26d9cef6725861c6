"""One attempt of one task: secrets, catalog, captured output, the task, its record.

Whatever the task does, :func:`run_attempt` returns; a failure becomes a FAIL record
whose message holds the exception's type and text, with the traceback in the step's log.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from runnable_dask.runtime.capture import capture_output
from runnable_dask.runtime.child import RemoteTraceback
from runnable_dask.runtime.deadline import time_limit
from runnable_dask.runtime.tokens import Param, summarise
from runnable_dask.sdk import BaseTask, NotebookTask, PythonTask, ShellTask
from runnable_dask.step_logs import log_name
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.timestamps import now


@dataclass(slots=True)
class AttemptResult:
    """What one attempt produced: its run-log records and its new parameter values."""

    ok: bool
    attempt: dict[str, Any]
    outputs: dict[str, Param] = field(default_factory=dict)
    data_catalog: list[dict[str, Any]] = field(default_factory=list)
    output: bytes = b""
    """What the task printed (its log), for the step cache."""


class MissingSecretError(Exception):
    """A secret the task names is not set where the task runs."""


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


def task_environment(values: dict[str, str]) -> _TaskEnvironment:
    """Set environment variables while a task runs, as runnable does (``RUNNABLE_RUN_ID``,
    a loop's index).

    The environment is the process's, shared by the tasks that run at once in it: each
    name is restored when the last task that set it ends, never while another still runs
    (two tasks that set one name to different values see the later value). A name that
    has its value already is left alone: setting and restoring one costs more than a
    trivial step. Nothing to set (a step of an in-process run, whose scope holds the run
    id), or no task with a name set, takes no lock: a lock every thread of a pool shares
    cost a tenth of a trivial step, and its holder losing the interpreter queued every
    other thread behind it (thousands of thread switches in a run of 3000 steps).
    """
    return _TaskEnvironment(values)


class _TaskEnvironment:
    """:func:`task_environment`'s context: a class, not a generator, since it wraps every
    step a worker runs (entering and leaving a generator's context cost more than the
    check that usually finds nothing to set)."""

    __slots__ = ("names", "values")

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.names: list[str] = []

    def __enter__(self) -> None:
        values = self.values
        if not values:
            return
        environ = os.environ
        if not _environment_users:
            for name, value in values.items():
                if environ.get(name) != value:
                    break
            else:
                return
        names = self.names
        with _environment_lock:
            for name, value in values.items():
                current = environ.get(name)
                users = _environment_users.get(name)
                if users is None and current == value:
                    continue
                count, before = users or (0, current)
                _environment_users[name] = (count + 1, before)
                if current != value:
                    environ[name] = value
                names.append(name)

    def __exit__(self, *_: object) -> None:
        if not self.names:
            return
        environ = os.environ
        with _environment_lock:
            for name in self.names:
                count, before = _environment_users.pop(name)
                if count > 1:
                    _environment_users[name] = (count - 1, before)
                elif before is None:
                    environ.pop(name, None)
                else:
                    environ[name] = before


_secret_names: set[str] = set()
"""Names of the secrets of the runs whose tasks ran in this process."""


def note_secrets(names: Iterable[str]) -> None:
    """Remember which names are secrets, to keep them from children of tasks that do
    not name them."""
    _secret_names.update(names)


def child_environment(own: Iterable[str]) -> dict[str, str]:
    """The environment for a task's child process: this process's, without the secrets
    the task does not name (tasks running at once in this process set theirs)."""
    keep = set(own)
    return {k: v for k, v in os.environ.items() if k not in _secret_names or k in keep}


def base_environment() -> dict[str, str]:
    """This process's environment as it is outside any task: the values tasks set while
    they run (a run id, secrets, a loop's index) are back to what they were before."""
    with _environment_lock:
        environ = dict(os.environ)
        for name, (_, before) in _environment_users.items():
            if before is None:
                environ.pop(name, None)
            else:
                environ[name] = before
    return environ


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
            if task.secrets:
                _check_secrets(task)
            if task.catalog is not None:
                records.extend(catalog.get(task.catalog.get))
            with time_limit(task.timeout):
                outputs = _dispatch(task, params, log, catalog, internal_name)
            _check_picklable(outputs)
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
    output = log.getbytes()
    log.close()
    if output:  # most steps of a wide map print nothing: an empty file per step is waste
        try:
            catalog.write_bytes(log_name(internal_name), output)
        except Exception as exc:
            message = message or (
                f"could not store the step's log in the catalog ({type(exc).__name__}: {exc})"
            )
    ok = not message
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
    if trace is None:
        if isinstance(exc.__cause__, RemoteTraceback):  # the user's code ran in a child
            return exc.__cause__.text
        return "".join(traceback.format_exception_only(type(exc), exc))  # our own checks
    return "".join(traceback.format_exception(type(exc), exc, trace))


class UnpicklableReturnError(Exception):
    """A ``pickled`` return cannot be pickled, so it can be neither kept nor moved."""


def _check_picklable(outputs: dict[str, Param]) -> None:
    """Pickled returns are checked where they are made: a value that cannot be pickled
    fails its step, instead of the checkpoint or the transfer to the next worker."""
    for name, param in outputs.items():
        if param.kind != "object":
            continue
        try:
            cloudpickle.dumps(param.value)
        except Exception as exc:
            raise UnpicklableReturnError(
                f"returned value {name!r} ({type(param.value).__name__}) cannot be pickled "
                f"({type(exc).__name__}: {exc}); return an object pickle can store (not a "
                "lock, an open file or a connection), or what rebuilds it"
            ) from exc


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

        return run_shell(task, params, log, catalog.run_id, internal_name)
    if isinstance(task, NotebookTask):
        from runnable_dask.runtime.notebook_task import run_notebook

        return run_notebook(task, params, log, catalog, internal_name)
    raise TypeError(f"no runner for {type(task).__name__}")
