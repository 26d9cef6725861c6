"""The Pipeline page of the Dask dashboard, as a scheduler preload.

``dask scheduler --preload runnable_dask.dashboard`` (or ``LocalCluster(scheduler_kwargs=
{"preload": ["runnable_dask.dashboard"]})``, which runnable_dask does for the cluster it
starts for a run) adds to the scheduler:

- the page ``/individual-pipeline``, listed as "Pipeline" in the dashboard's "More..." menu;
- its data as JSON under ``/runnable-dask/runs`` (see :mod:`runnable_dask.dashboard.routes`);
- the plugin that keeps runs' states from the events they send
  (:class:`~runnable_dask.dashboard.plugin.PipelinePlugin`).

A scheduler imports its preloads before it starts its web server, and runs their
``dask_setup`` after: so the page and the routes are registered when this module is
imported, and the plugin added in :func:`dask_setup`. This module touches the dashboard's
internals (its ``applications`` table); ``tests/cluster/test_dashboard_page.py`` fails
if they change.
"""

from __future__ import annotations

from typing import Any

import dask

ROUTES_MODULE = "runnable_dask.dashboard.routes"
PRELOAD = "runnable_dask.dashboard"
"""The name to give ``--preload`` (and ``scheduler_kwargs={"preload": [...]}``)."""


def register() -> None:
    """Add the page to the dashboard and the JSON routes to the scheduler's web server,
    for every scheduler started in this process from now on."""
    import distributed  # noqa: F401  (its configuration's defaults, read below)

    routes = list(dask.config.get("distributed.scheduler.http.routes"))
    if ROUTES_MODULE not in routes:
        dask.config.set({"distributed.scheduler.http.routes": [*routes, ROUTES_MODULE]})
    try:
        from distributed.dashboard import scheduler as dashboard
    except ImportError:  # no bokeh, no dashboard: the JSON routes still serve
        return
    from runnable_dask.dashboard.page import PATH, pipeline_doc

    dashboard.applications.setdefault(PATH, pipeline_doc)


def dask_setup(scheduler: Any) -> None:
    """Run by the scheduler once started: keep the runs' states."""
    from runnable_dask.dashboard.plugin import NAME, PipelinePlugin

    if NAME not in scheduler.plugins:
        scheduler.add_plugin(PipelinePlugin())


register()
