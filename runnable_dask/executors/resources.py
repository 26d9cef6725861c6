"""Worker resources on a Dask cluster: what the pipeline asks for, and who offers it.

A task that asks for resources no worker offers waits in the scheduler (its state is
``no-worker``) until a worker that offers them joins. So that a run never waits in
silence, each distinct set of resources is checked against the cluster's workers when
its first task is submitted: a set no worker offers is named on the console, with the
``dask worker --resources`` line that would serve it. On a cluster that cannot grow (the
``LocalCluster`` started for the run) the run is refused instead: nothing would come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dask.utils import key_split

from runnable_dask.config import DaskConfig
from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.executors.cluster import DEFAULT_THREADS_PER_WORKER
from runnable_dask.plan import Plan
from runnable_dask.sdk.resources import Resources, amount_text, describe

Notice = Callable[[str], None]


class MissingResourcesError(RunnableDaskError):
    """Steps ask for resources that the cluster started for the run does not offer."""


def pipeline_resources(plan: Plan) -> Resources:
    """Each resource any step names, at the largest amount a step asks for."""
    needed: Resources = {}
    for _, node in plan.nodes():
        for name, amount in (getattr(node.step, "resources", None) or {}).items():
            needed[name] = max(amount, needed.get(name, 0.0))
    return needed


def offered_by_local_cluster(config: DaskConfig, plan: Plan) -> DaskConfig:
    """``config`` with the resources its ``LocalCluster``'s workers offer: the configured
    ones, else every resource the steps name, enough for each of a worker's threads to
    run the step that asks most (so on a laptop the annotations limit nothing, and the
    pipeline runs as it would without them). Unchanged for a cluster of one's own."""
    if config.address or config.cluster_class or config.resources is not None:
        return config
    asked = pipeline_resources(plan)
    if asked and _standing_cluster_offers(config, asked):
        return config  # the runnable-dask cluster started with them serves the run
    threads = config.threads_per_worker or DEFAULT_THREADS_PER_WORKER
    needed = {name: amount * threads for name, amount in asked.items()}
    return config.model_copy(update={"resources": needed}) if needed else config


def _standing_cluster_offers(config: DaskConfig, asked: Resources) -> bool:
    """Whether the run would use a running ``runnable-dask cluster`` (nothing in the
    configuration or the environment names another) whose workers offer ``asked``
    (``cluster start --resources``)."""
    from runnable_dask.executors import standing
    from runnable_dask.executors.cluster import _asks_for_its_own, _dask_default_address

    if _asks_for_its_own(config) or _dask_default_address() is not None:
        return False
    try:
        state = standing.read(standing.state_path())
    except standing.StandingClusterError:
        return False
    return state is not None and state.scheduler.alive() and satisfied(asked, state.resources)


def satisfied(asked: Mapping[str, float], offered: Mapping[str, float]) -> bool:
    """Whether one worker offering ``offered`` can run a task asking for ``asked``."""
    return all(offered.get(name, 0.0) >= amount for name, amount in asked.items())


class ResourceCheck:
    """Checks each new set of resources against the workers when its first task goes."""

    def __init__(self, client: Any, address: str, can_grow: bool, notice: Notice) -> None:
        self.client = client
        self.address = address
        self.can_grow = can_grow
        self.notice = notice
        self._checked: set[tuple[tuple[str, float], ...]] = set()

    def submitted(self, resources: Mapping[str, Resources]) -> None:
        """Name (or refuse) every set of ``resources`` that no worker offers now."""
        new: dict[tuple[tuple[str, float], ...], list[str]] = {}
        for key, asked in resources.items():
            token = tuple(sorted(asked.items()))
            if token not in self._checked:
                new.setdefault(token, []).append(key_split(key))
        if not new:
            return
        self._checked |= new.keys()
        offers = self._offers()
        for token, steps in new.items():
            asked = dict(token)
            if any(satisfied(asked, offer) for offer in offers):
                continue
            self._missing(asked, sorted(set(steps)), offers)

    def _offers(self) -> list[Mapping[str, float]]:
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return [info.get("resources") or {} for info in workers.values()]

    def _missing(self, asked: Resources, steps: Iterable[str], offers: list[Any]) -> None:
        names = ", ".join(steps)
        have = sorted({f"{describe(o)}" for o in offers if o}) or ["none"]
        if not self.can_grow:
            raise MissingResourcesError(
                f"step {', '.join(map(repr, steps))} asks for resources {describe(asked)}, "
                "but the LocalCluster "
                f"started for the run offers {'; '.join(have)}; raise "
                "pipeline-executor.config.resources (or remove it: the LocalCluster then "
                "offers what the pipeline asks for), or run on a cluster whose workers offer them"
            )
        flags = " ".join(f"{n}={amount_text(a)}" for n, a in sorted(asked.items()))
        self.notice(
            f"waiting {names} asks for {describe(asked)}, which no worker offers now "
            f"(workers offer: {'; '.join(have)}); it runs when one joins, e.g. "
            f'dask worker {self.address} --resources "{flags}"'
        )
