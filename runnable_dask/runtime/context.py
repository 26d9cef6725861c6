"""The run-wide facts every task needs, and the reporters that carry its events home."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]
Reporter = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class TopicReporter:
    """Sends events from a Dask worker to the driver, which subscribes to ``topic``."""

    topic: str

    def __call__(self, event: Event) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, event)


@dataclass(frozen=True, slots=True)
class QueueReporter:
    """Hands events to the driver in the same process (the ``local`` executor)."""

    events: queue.SimpleQueue

    def __call__(self, event: Event) -> None:
        self.events.put(event)


@dataclass(frozen=True, slots=True)
class RunContext:
    """Passed to every task: which run, where its catalog is, how to report."""

    run_id: str
    catalog_location: str
    report: Reporter

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # One per run and the same in every task: no need to hash the reporter each time.
        return ("RunContext", self.run_id, self.catalog_location)
