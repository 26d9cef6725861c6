"""The scheduler plugin that keeps the Pipeline page's state, fed by the event log.

Every event a scheduler logs reaches each plugin's ``log_event`` (``distributed.broker``):
runs' events arrive here as the packed bytes tasks send (``runnable-dask/<run_id>``), and
what the driving process announces as plain messages (``runnable-dask-runs``). Nothing
else is asked of the scheduler; every hook runs on its event loop, as do the page and
the JSON routes, so the state needs no lock.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from runnable_dask.announce import RUN_TOPIC_PREFIX, RUNS_TOPIC
from runnable_dask.dashboard.state import Runs
from runnable_dask.runtime.events import unpack

logger = logging.getLogger(__name__)
PENDING = 5000
"""Events kept unread at most, before they are applied anyway."""
NAME = "runnable-dask-pipeline"
"""The plugin's name on the scheduler (``Scheduler.plugins``)."""


class PipelinePlugin(SchedulerPlugin):
    """Keeps :class:`Runs` up to date from the runs' events.

    Example, on a scheduler started in Python::

        scheduler.add_plugin(PipelinePlugin())
        scheduler.plugins[NAME].runs.ordered()  # what the page lists
    """

    name = NAME

    def __init__(self) -> None:
        self._runs = Runs()
        self._pending: list[tuple[str, Any]] = []

    @property
    def runs(self) -> Runs:
        """The runs, up to date with every event received."""
        self._catch_up()
        return self._runs

    def log_event(self, topic: str, msg: Any) -> None:
        """Keep the event; it is read when the page or the JSON asks, or once
        :data:`PENDING` are waiting: a run nobody watches costs the scheduler (which
        shares the driver's process in a run's own LocalCluster) an append per event."""
        if topic.startswith(RUN_TOPIC_PREFIX) or topic == RUNS_TOPIC:
            self._pending.append((topic, msg))
            if len(self._pending) >= PENDING:
                self._catch_up()

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.runs.client_left(client)

    def _catch_up(self) -> None:
        pending, self._pending = self._pending, []
        for topic, msg in pending:
            try:
                if topic == RUNS_TOPIC:
                    if isinstance(msg, dict):
                        self._runs.announced(msg)
                    continue
                run = self._runs.run(topic[len(RUN_TOPIC_PREFIX) :])
                for event in unpack(msg):
                    run.apply(event)
            except Exception:  # a malformed event must not disturb the scheduler
                logger.debug("runnable-dask: event on %s not understood", topic, exc_info=True)


def plugin_of(scheduler: Any) -> PipelinePlugin | None:
    """The scheduler's plugin, if the preload added one."""
    found = scheduler.plugins.get(NAME)
    return found if isinstance(found, PipelinePlugin) else None
