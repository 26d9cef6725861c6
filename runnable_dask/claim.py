"""Which run log a run writes: a new one under a fresh or given id, or the one of the
failed run it resumes.

Resuming is asking for the id of a run that did not succeed: its run log is reopened,
its initial parameters are used again, and only what did not finish runs (tasks that
finished find their checkpoints). A run whose pipeline changed since or that succeeded
is refused, and so is a run another driver holds: the claim is the run's lock in the
run-log store, so of drivers started together with one id exactly one runs.
"""

from __future__ import annotations

import os
import re
import socket
import sys

from runnable_dask.exceptions import ConfigurationError, RunLogExistsError, RunLogStoreError
from runnable_dask.run_id import generate_run_id
from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStorage

ENTRY_ENV = "RUNNABLE_DASK_ENTRY"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def claim(
    store: RunLogStorage, requested: str, template: RunLog, params: dict[str, Param]
) -> tuple[RunLog, dict[str, Param], bool]:
    """The run log to write, the initial parameters, and whether this run resumes one."""
    if requested and not _RUN_ID.fullmatch(requested):
        raise ConfigurationError(
            f"run id {requested!r} cannot name a file: use letters, digits, '.', '_' and "
            "'-', starting with a letter or digit (e.g. 'sweep-2026-11-28')"
        )
    template.run_config["initial_parameters"] = {n: p.value for n, p in params.items()}
    template.run_config["driver"] = {"host": socket.gethostname(), "pid": os.getpid()}
    while True:
        run_id = requested or generate_run_id()
        try:
            store.lock(run_id)  # one driver per run id: a second one is refused here
            if requested and store.exists(requested):
                previous = store.read(requested)
                run_log = _resume(previous, template)
                store.write(run_log)  # its driver is this one; the store is writable
                return run_log, _initial(previous), True
            run_log = template.model_copy(update={"run_id": run_id})
            store.create(run_log)
        except RunLogExistsError:
            store.release(run_id)
            if requested:
                raise
            continue  # a generated id already used: draw another
        except RunLogStoreError as exc:
            store.release(run_id)
            raise RunLogStoreError(f"{exc}; no step has run") from None
        except BaseException:
            store.release(run_id)
            raise
        return run_log, params, False


def launch_record(configuration_file: str, parameters_file: str) -> dict[str, str]:
    """How the run was started, so ``runnable-dask retry`` can start it again."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", "") or ""
    return {
        "entry": os.environ.get(ENTRY_ENV) or (os.path.abspath(script) if script else ""),
        "cwd": os.getcwd(),
        "configuration_file": configuration_file,
        "parameters_file": parameters_file,
    }


def _resume(previous: RunLog, template: RunLog) -> RunLog:
    run_id = previous.run_id
    if previous.status == "SUCCESS":
        raise RunLogExistsError(
            f"run {run_id!r} succeeded already; runs never overwrite one: choose another "
            "run_id or leave it empty"
        )
    if previous.dag_hash != template.dag_hash:
        raise ConfigurationError(
            f"run {run_id!r} cannot resume: the pipeline's definition changed since it ran "
            f"(dag hash {previous.dag_hash[:12]} then, {template.dag_hash[:12]} now); "
            "restore the definition to resume it, or start a new run"
        )
    resumes = int(previous.run_config.get("resumed", 0)) + 1
    config = {
        **template.run_config,
        "initial_parameters": previous.run_config.get("initial_parameters", {}),
        "resumed": resumes,
    }
    config.pop("error", None)
    return previous.model_copy(update={"status": "PROCESSING", "run_config": config})


def _initial(previous: RunLog) -> dict[str, Param]:
    stored = previous.run_config.get("initial_parameters", {})
    return {name: Param(kind="json", value=value) for name, value in stored.items()}
