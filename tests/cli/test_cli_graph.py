"""``runnable-dask graph``: the pipeline's shape as Mermaid (and SVG), with nothing run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import runnable_dask
from runnable_dask import Pipeline, PythonTask, Stub
from runnable_dask.cli.diagram import build_diagram, to_dot, to_mermaid
from runnable_dask.plan import build_plan

Invoke = Callable[..., Result]
MERMAID_ID = re.compile(r"^\s*(?:subgraph )?([^\s\[(]+)[\[(]", re.M)


def test_graph_of_a_function_draws_every_step_and_branch(invoke: Invoke, flow: Path) -> None:
    result = invoke("graph", "flow.py:failing")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("flowchart TD\n")
    for label in ("first", "fan (parallel)", "quiet", "fails", "after", "success", "fail"):
        assert f'["{label}"]' in text or f'(("{label}"))' in text, label
    assert text.count("subgraph ") == 3  # fan, and its branches a and b
    assert '["a"]' in text and '["b"]' in text


def test_graph_of_main_stops_at_execute_and_runs_nothing(
    invoke: Invoke, flow: Path, workdir: Path
) -> None:
    result = invoke("graph", "flow.py")
    assert result.exit_code == 0, result.output
    assert '["first"]' in result.stdout and '["second"]:::stub' in result.stdout
    assert not (workdir / ".run_log_store").exists()


def test_graph_writes_the_mermaid_file(invoke: Invoke, flow: Path, workdir: Path) -> None:
    result = invoke("graph", "flow.py:passing", "-o", "flow.mmd")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert (workdir / "flow.mmd").read_text(encoding="utf-8").startswith("flowchart TD")


def test_graph_refuses_what_returns_no_pipeline(invoke: Invoke, flow: Path) -> None:
    result = invoke("graph", "flow.py:not_a_pipeline")
    assert result.exit_code == 2
    assert "returned int, expected a runnable_dask Pipeline" in result.stderr


def test_svg_without_graphviz_says_what_to_install(
    invoke: Invoke, flow: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(workdir))
    result = invoke("graph", "flow.py:passing", "--svg", "flow.svg")
    assert result.exit_code == 2
    assert "--svg needs Graphviz's dot on PATH" in result.stderr
    assert not (workdir / "flow.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_svg_is_rendered_by_dot(invoke: Invoke, flow: Path, workdir: Path) -> None:
    result = invoke("graph", "flow.py:failing", "--svg", "flow.svg")
    assert result.exit_code == 0, result.output
    svg = (workdir / "flow.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and ">fails<" in svg and ">fan (parallel)<" in svg


def test_on_failure_routes_are_dashed_and_ids_are_safe() -> None:
    """Names with spaces and quotes never become ids; on_failure edges are dashed."""
    recover = Pipeline(steps=[Stub(name="clean up")])
    pipeline = Pipeline(
        steps=[
            PythonTask(name='load "raw" #1', function=print, on_failure=recover),
            Stub(name="use it"),
        ]
    )
    diagram = build_diagram(build_plan(pipeline))
    mermaid = to_mermaid(diagram)
    ids = MERMAID_ID.findall(mermaid)
    assert ids and all(re.fullmatch(r"n\d+(_b\d+)?", node_id) for node_id in ids), ids
    labels = dict(re.findall(r'(n\d+)\["([^"]+)"\]', mermaid))
    by_label = {label: node_id for node_id, label in labels.items()}
    load = by_label["load #quot;raw#quot; #35;1"]  # Mermaid's escapes for " and #
    assert f"{load} -.->|on failure| {by_label['clean up']}" in mermaid
    assert f"{load} --> {by_label['use it']}" in mermaid
    dot = to_dot(diagram)
    assert f'{load} [label="load \\"raw\\" #1"];' in dot
    assert f"{load} -> {by_label['clean up']} [style=dashed" in dot


def test_composites_are_clusters_that_edges_enter_and_leave() -> None:
    inner = Pipeline(steps=[Stub(name="inside")])
    pipeline = Pipeline(
        steps=[
            Stub(name="before"),
            runnable_dask.Parallel(name="fan", branches={"x": inner, "y": inner}),
            Stub(name="after"),
        ]
    )
    dot = to_dot(build_diagram(build_plan(pipeline)))
    assert "subgraph cluster_n1 {" in dot and 'label="fan (parallel)"' in dot
    assert re.search(r"n0 -> n\d+ \[lhead=cluster_n1\];", dot)
    assert re.search(r"n\d+ -> n\d+ \[ltail=cluster_n1\];", dot)


def test_a_map_template_is_one_cluster_with_placeholder_free_ids() -> None:
    template = Pipeline(steps=[PythonTask(name="train", function=print)])
    pipeline = Pipeline(
        steps=[
            runnable_dask.Map(
                name="sweep", branch=template, iterate_on="alphas", iterate_as="alpha"
            )
        ]
    )
    mermaid = to_mermaid(build_diagram(build_plan(pipeline)))
    assert '["sweep (map)"]' in mermaid
    assert '["for each alpha in alphas"]' in mermaid
    assert '["train"]' in mermaid
    assert "%" not in mermaid
