"""Worker resources: checked when built, merged through composites, annotated per task;
ignored (with a note) in-process; offered by the LocalCluster started for the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    Map,
    Parallel,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    Stub,
)
from runnable_dask.config import DaskConfig, parse_configuration
from runnable_dask.executors.resources import (
    MissingResourcesError,
    offered_by_local_cluster,
    pipeline_resources,
)
from runnable_dask.lower import Lowering
from runnable_dask.plan import build_plan
from runnable_dask.runtime.context import RunContext


def noop(item: Any = None) -> None:
    return None


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"GPU": 0}, r"PythonTask 'train': resources: resource 'GPU' asks for 0; give a positive"),
        ({"GPU": -1}, r"resource 'GPU' asks for -1"),
        ({"GPU": "one"}, r"resource 'GPU' asks for 'one'"),
        ({"GPU": True}, r"resource 'GPU' asks for True"),
        ({"GPU=1": 1}, r"resource name 'GPU=1' must be a non-empty string without '='"),
        ({3: 1}, r"resource name 3 must be a non-empty string"),
        (["GPU"], r"resources must be a mapping of names to amounts"),
    ],
)
def test_bad_resources_are_refused_naming_the_step(resources: Any, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        PythonTask(name="train", function=noop, resources=resources)


def lowered(pipeline: Pipeline, items: tuple[str, ...] = ("a", "b")) -> dict[str, dict]:
    """Step name -> the resources of its task(s), maps expanded over ``items``."""
    ctx = RunContext(run_id="r", catalog_location=".catalog", reporter=lambda events: None)
    lowering = Lowering(build_plan(pipeline), ctx)
    part, _ = lowering.first({})
    found = dict(part.resources)
    for frontier in part.frontiers.values():
        for expansion in lowering.expand(frontier, items):
            found.update(expansion.resources)
    return {key.split("-")[0]: value for key, value in found.items()}


def test_composite_resources_reach_every_task_inside_and_inner_amounts_win() -> None:
    inner = PythonTask(name="fit", function=noop, resources={"GPU": 2, "MEMORY": 8e9})
    pipeline = Pipeline(
        steps=[
            Parallel(
                name="fan",
                branches={
                    "a": Pipeline(
                        steps=[
                            Map(
                                name="grid",
                                branch=Pipeline(steps=[inner, Stub(name="note")]),
                                iterate_on="items",
                                iterate_as="item",
                                resources={"GPU": 1, "disk": 1},
                            )
                        ]
                    ),
                    "b": Pipeline(steps=[PythonTask(name="plain", function=noop)]),
                },
                resources={"MEMORY": 1e9},
            ),
            PythonTask(name="report", function=noop),
        ]
    )

    resources = lowered(pipeline)

    assert resources == {
        "fit": {"MEMORY": 8e9, "GPU": 2.0, "disk": 1.0},
        "plain": {"MEMORY": 1e9},
    }
    assert pipeline_resources(build_plan(pipeline)) == {"MEMORY": 8e9, "GPU": 2.0, "disk": 1.0}


def test_the_run_s_local_cluster_offers_what_the_steps_ask_for_unless_configured() -> None:
    plan = build_plan(Pipeline(steps=[PythonTask(name="fit", function=noop, resources={"GPU": 1})]))
    # Enough for each of a worker's threads (4 by default) to run the step at once.
    assert offered_by_local_cluster(DaskConfig(), plan).resources == {"GPU": 4.0}
    assert offered_by_local_cluster(DaskConfig(threads_per_worker=2), plan).resources == {
        "GPU": 2.0
    }
    assert offered_by_local_cluster(DaskConfig(resources={"GPU": 4}), plan).resources == {
        "GPU": 4.0
    }
    remote = DaskConfig(address="tcp://127.0.0.1:8786")
    assert offered_by_local_cluster(remote, plan).resources is None


def test_configured_resources_need_the_run_s_local_cluster() -> None:
    data = {
        "pipeline-executor": {
            "type": "dask",
            "config": {"address": "tcp://127.0.0.1:8786", "resources": {"GPU": 1}},
        }
    }
    with pytest.raises(Exception, match="address connects to a running scheduler, so resources"):
        parse_configuration(data)


def test_local_executor_notes_once_that_it_ignores_resources(
    run, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(
        steps=[
            PythonTask(name="one", function=noop, resources={"GPU": 1}),
            PythonTask(name="two", function=noop, resources={"GPU": 1}),
        ]
    )

    run_log = run(pipeline)

    printed = capsys.readouterr().out
    assert run_log.status == "SUCCESS"
    assert printed.count("resources are Dask worker resources") == 1
    assert "  note     resources are Dask worker resources: on the local executor" in printed


@pytest.mark.cluster
def test_local_cluster_without_the_asked_resource_refuses_the_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "cluster.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n"
        "    n_workers: 1\n    threads_per_worker: 1\n    processes: true\n"
        "    dashboard_address: 127.0.0.1:0\n    performance_report: false\n"
        "    resources: {GPU: 1}\n",
        encoding="utf-8",
    )
    pipeline = Pipeline(
        steps=[PythonTask(name="big", function=noop, resources={"GPU": 1, "MEMORY": 64e9})]
    )

    with pytest.raises(MissingResourcesError, match=r"step 'big' asks for resources GPU=1, MEMORY"):
        pipeline.execute(configuration_file=str(config), run_id="no-gpu")

    assert "each offering GPU=1" in capsys.readouterr().out


@pytest.mark.cluster
def test_local_cluster_started_for_the_run_offers_the_steps_resources(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "cluster.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n"
        "    n_workers: 1\n    threads_per_worker: 2\n    processes: true\n"
        "    dashboard_address: 127.0.0.1:0\n    performance_report: false\n",
        encoding="utf-8",
    )

    def resources_here() -> dict:
        from distributed import get_worker

        return dict(get_worker().state.total_resources)

    pipeline = Pipeline(
        steps=[
            PythonTask(
                name="fit", function=resources_here, returns=["offered"], resources={"GPU": 1}
            )
        ]
    )

    run_log = pipeline.execute(configuration_file=str(config), run_id="gpu-local")

    assert run_log.parameters["offered"].value == {"GPU": 2.0}  # 2 threads x 1
    assert "each offering GPU=2" in capsys.readouterr().out
