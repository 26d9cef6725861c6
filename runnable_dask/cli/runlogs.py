"""Where the CLI finds run logs, and one run log read for a command.

Reading and measuring runs is :mod:`runnable_dask.results`' job; this module adds what
only the command line needs: the folder from ``--log-folder`` or the configuration, and
a refusal as a usage problem (exit status 2).
"""

from __future__ import annotations

from runnable_dask.cli.errors import UsageProblem
from runnable_dask.config import load_configuration
from runnable_dask.results import load_run
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStorage, RunLogStore


def resolve_store(configuration_file: str | None, log_folder: str | None) -> RunLogStorage:
    """The run logs at ``--log-folder``, else the configuration's run-log store."""
    if log_folder:
        return RunLogStore(log_folder)
    store: RunLogStorage = load_configuration(configuration_file or "").run_log_store.config.open()
    return store


def read_run_log(store: RunLogStorage, run_id: str) -> RunLog:
    """One run log; an unknown id is refused with the most recent ids to choose from."""
    try:
        return load_run(run_id, store)
    except RunLogNotFoundError as exc:
        raise UsageProblem(str(exc)) from None
    except ValueError as exc:
        raise UsageProblem(f"run log {store.url(run_id)} cannot be read: {exc}") from None
