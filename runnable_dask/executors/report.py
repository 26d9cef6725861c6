"""A Dask performance report for each run, kept in the run's catalog.

``distributed.performance_report`` renders the scheduler's task stream, worker profiles,
bandwidth and the tasks by group into one standalone HTML file. Task keys are
``<step name>-<digits>``, so the report's task stream and groups read like the pipeline,
and the file outlives the cluster (an embedded LocalCluster closes with the run). On a
scheduler shared with other clients, the report covers all work in the run's time window.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runnable_dask.stores.catalog import RunCatalog

if TYPE_CHECKING:
    from distributed import Client

REPORT_NAME = "dask-performance-report.html"

logger = logging.getLogger(__name__)


@dataclass
class PerformanceReport:
    """Filled in when the run ends: where the report is, or why there is none."""

    url: str | None = None
    error: str | None = None


@contextmanager
def performance_report(
    client: Client, catalog: RunCatalog, calling_code: str, at_least: float = 0.0
) -> Iterator[PerformanceReport]:
    """Record the run's Dask performance and store it as ``<catalog>/<run_id>/`` + REPORT_NAME.

    ``calling_code`` fills the report's "Calling Code" section, which Dask would fill with
    the line of our own code that closed the report. A run shorter than ``at_least``
    seconds gets no report (rendering it would cost as much as the run).

    A report that cannot be made (the scheduler is gone) is logged and noted in
    ``error``; it never hides the run's own outcome. Enter it inside the executor's
    ``with`` block, since the report is rendered by the scheduler when the block ends.
    """
    outcome = PerformanceReport()
    from distributed import performance_report as dask_report

    with tempfile.TemporaryDirectory(prefix="runnable-dask-report-") as folder:
        path = os.path.join(folder, REPORT_NAME)
        # "inline": BokehJS inside the file, so it opens without network (Bokeh's
        # default loads it from a CDN, and an offline browser shows a blank page).
        recorder = dask_report(filename=path, mode="inline")
        began = time.monotonic()
        started = _attempt(outcome, "start", lambda: _as_current(client, recorder.__enter__))
        try:
            yield outcome
        finally:
            if (
                started
                and time.monotonic() - began >= at_least
                and _attempt(
                    outcome,
                    "render",
                    lambda: _as_current(
                        client,
                        lambda: client.sync(
                            recorder.__aexit__, None, None, None, code=calling_code
                        ),
                    ),
                )
            ):
                _attempt(outcome, "store", lambda: _store(outcome, catalog, path))


def _as_current(client: Client, action: Callable[[], object]) -> None:
    # performance_report finds its client with get_client(); ours is not the default.
    with client.as_current():
        action()


def _store(outcome: PerformanceReport, catalog: RunCatalog, path: str) -> None:
    outcome.url = catalog.store_file(path, REPORT_NAME)


def _attempt(outcome: PerformanceReport, stage: str, action: Callable[[], object]) -> bool:
    try:
        action()
    except Exception as exc:
        outcome.error = (
            f"could not {stage} the Dask performance report: {type(exc).__name__}: {exc}"
        )
        logger.warning(outcome.error)
        return False
    return True
