"""Records every task carries (the run context, a step's node) pickle once per process and
unpickle as one shared record, and still carry user code shipped by value."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from runnable_dask.executors.dask_events import TopicReporter
from runnable_dask.pickled_once import KEPT
from runnable_dask.plan import Node
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.node import StepCall
from runnable_dask.runtime.tokens import Entry


def context() -> RunContext:
    return RunContext(
        run_id="run-1",
        catalog_location="/tmp/catalog",
        reporter=TopicReporter("runnable-dask/run-1"),
        project_dir="/tmp/project",
        secrets={"TOKEN": "x"},
    )


def calls(node: Node, count: int) -> list[StepCall]:
    return [
        StepCall(node=node, entry=Entry(node.internal_name), items=(str(i),)) for i in range(count)
    ]


def test_a_map_s_calls_share_one_node_in_the_pickle_and_after_it() -> None:
    node = Node(internal_name="sweep.%.inc", name="inc", kind="task", step="x" * 2000)
    one = len(pickle.dumps(calls(node, 1)))
    hundred = pickle.dumps(calls(node, 100))

    assert len(hundred) < one + 99 * 200  # the node's 2000 bytes went once, not 100 times
    back = pickle.loads(hundred)
    assert [c.internal_name for c in back] == [f"sweep.{i}.inc" for i in range(100)]
    assert back[0].node == node
    assert all(c.node is back[0].node for c in back)  # rebuilt once, shared
    assert pickle.loads(pickle.dumps(back[0])) == back[0]  # and pickles again as it came


def test_the_run_context_round_trips_as_one_record_per_process() -> None:
    ctx = context()
    first, second = pickle.loads(pickle.dumps(ctx)), pickle.loads(pickle.dumps(ctx))

    assert first.run_id == "run-1" and first.secrets == {"TOKEN": "x"}
    assert first.project_dir == ctx.project_dir and first.catalog_location == ctx.catalog_location
    assert first is second


class Counted:
    """A field that counts how often it is pickled."""

    reduced = 0

    def __reduce__(self) -> tuple[type, tuple[()]]:
        Counted.reduced += 1
        return Counted, ()


def test_a_record_unpickled_again_goes_out_as_the_bytes_it_came_with() -> None:
    # A rerun on a LocalCluster: the scheduler, in the driving process, unpickles the
    # rerun's nodes as the last run's records, after the driver pickled thousands of others.
    node = Node(internal_name="wide.b0.s0", name="s0", kind="task", step=Counted())
    data = pickle.dumps(StepCall(node=node, entry=Entry("wide.b0.s0")))
    first = pickle.loads(data)
    others = [Node(internal_name=f"o{i}", name=f"o{i}", kind="task") for i in range(KEPT + 1)]
    pickle.dumps([c for o in others for c in calls(o, 1)])
    Counted.reduced = 0

    again = pickle.loads(data)
    assert again.node is first.node
    assert pickle.dumps(again) == data
    assert Counted.reduced == 0  # its bytes were kept, not made again


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """A module of the user's project, importable here but not in another process."""
    (tmp_path / "userproj_once.py").write_text(
        textwrap.dedent(
            """
            def score(x):
                return x * 7
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("userproj_once")
    yield module
    if "userproj_once" in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.unregister_pickle_by_value(module)
    sys.modules.pop("userproj_once", None)


def loads_elsewhere(data: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Unpickle ``data`` in a fresh interpreter that cannot import the user's module."""
    path = tmp_path / "pickled.bin"
    path.write_bytes(data)
    code = (
        "import pickle, sys; call = pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print(call.node.step(6))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path.parent,
        timeout=60,
    )


def test_a_node_pickled_again_after_its_module_is_shipped_by_value_carries_the_code(
    user_module: object, tmp_path: Path
) -> None:
    node = Node(internal_name="step", name="step", kind="task", step=user_module.score)  # type: ignore[attr-defined]
    call = StepCall(node=node, entry=Entry("step"))
    by_reference = pickle.dumps(call)
    cloudpickle.register_pickle_by_value(user_module)
    by_value = pickle.dumps(call)

    refused = loads_elsewhere(by_reference, tmp_path)
    assert refused.returncode != 0 and "userproj_once" in refused.stderr
    shipped = loads_elsewhere(by_value, tmp_path)
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.strip() == "42"


def test_a_node_whose_function_lives_in_main_carries_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script's or a notebook's function: the standard pickler would name it as
    # ``__main__.score_in_main``, which a worker's ``__main__`` does not have.
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("def score_in_main(x):\n    return x * 7\n", namespace)
    score = namespace["score_in_main"]
    monkeypatch.setattr(sys.modules["__main__"], "score_in_main", score, raising=False)
    node = Node(internal_name="step", name="step", kind="task", step=score)

    loaded = loads_elsewhere(pickle.dumps(StepCall(node=node, entry=Entry("step"))), tmp_path)

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "42"


def test_a_node_whose_function_is_defined_in_a_function_carries_its_code(tmp_path: Path) -> None:
    def score(x: int) -> int:
        return x * 7

    node = Node(internal_name="step", name="step", kind="task", step=score)

    loaded = loads_elsewhere(pickle.dumps(StepCall(node=node, entry=Entry("step"))), tmp_path)

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "42"
