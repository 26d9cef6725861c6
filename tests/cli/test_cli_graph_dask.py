"""``runnable-dask graph --dask``: the Dask task graph a pipeline lowers to."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Invoke = Callable[..., Result]


def test_the_dask_graph_prints_its_keys_by_layer(invoke: Invoke, flow: Path) -> None:
    result = invoke("graph", "--dask", "flow.py:failing")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("flowchart TD\n")
    layers = re.findall(r'subgraph \w+\["([^"]+)"\]', text)
    assert sorted(layers) == ["fan.a", "fan.b", "pipeline"]
    keys = re.findall(r'\["([a-z_]+)-\d+"\]', text)
    for step in ("first", "quiet", "fails", "after", "fan"):
        assert step in keys, step
    assert " --> " in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not on PATH")
def test_the_dask_graph_as_svg(invoke: Invoke, flow: Path, workdir: Path) -> None:
    pytest.importorskip("graphviz", reason="dask.visualize needs the graphviz package")
    result = invoke("graph", "--dask", "flow.py:failing", "--svg", "dask.svg")
    assert result.exit_code == 0, result.output
    assert "fails" in (workdir / "dask.svg").read_text(encoding="utf-8")
