"""Step caching across runs (``cache=True``), on the ``local`` executor.

Each cached step appends to a file in the working folder when it really runs, so a test
can tell a step that ran from one whose outputs came from the cache.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runnable_dask import (
    Catalog,
    Map,
    NotebookTask,
    Pipeline,
    PythonTask,
    ShellTask,
    metric,
    pickled,
    results,
)
from runnable_dask.stores.runlog import RunLog

Run = Callable[..., RunLog]


def ran(workdir: Path, name: str = "ran.txt") -> list[str]:
    """What the cached steps wrote when they really ran, one line each."""
    path = workdir / name
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def note(line: str, name: str = "ran.txt") -> None:
    with open(name, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def cached_from(run_log: RunLog, internal_name: str) -> str | None:
    return run_log.step(internal_name).attempts[-1].cached_from


def cache_files(workdir: Path) -> list[Path]:
    return [p for p in (workdir / ".catalog" / ".cache").rglob("*") if p.is_file()]


def double(x: int) -> int:
    note(f"double {x}")
    return 2 * x


def doubling(cache: bool | None = True) -> Pipeline:
    return Pipeline(steps=[PythonTask(name="double", function=double, returns=["y"], cache=cache)])


def params_file(workdir: Path, **values: Any) -> str:
    path = workdir / f"params-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(values), encoding="utf-8")
    return str(path)


def test_second_run_reuses_the_outputs_without_running(
    run: Run, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = params_file(workdir, x=3)
    first = run(doubling(), run_id="first", parameters_file=params)
    second = run(doubling(), run_id="second", parameters_file=params)

    assert ran(workdir) == ["double 3"]  # the function ran once
    assert second.parameters["y"].value == 6
    assert cached_from(first, "double") is None
    assert cached_from(second, "double") == "first"
    attempt = second.step("double").attempts[-1]
    assert attempt.status == "SUCCESS" and attempt.output_parameters["y"].value == 6
    stored = json.loads((workdir / ".run_log_store" / "second.json").read_text())
    assert stored["steps"]["double"]["attempts"][-1]["cached_from"] == "first"
    [row] = results.steps(second)
    assert row["cached_from"] == "first"
    assert "cached   double (from run first)" in capsys.readouterr().out


def test_a_changed_parameter_runs_the_step_again(run: Run, workdir: Path) -> None:
    run(doubling(), run_id="three", parameters_file=params_file(workdir, x=3))
    changed = run(doubling(), run_id="four", parameters_file=params_file(workdir, x=4))
    again = run(doubling(), run_id="three-again", parameters_file=params_file(workdir, x=3))

    assert ran(workdir) == ["double 3", "double 4"]
    assert cached_from(changed, "double") is None
    assert changed.parameters["y"].value == 8
    assert cached_from(again, "double") == "three"  # both entries are kept


def test_a_parameter_the_step_does_not_read_is_not_part_of_the_key(run: Run, workdir: Path) -> None:
    run(doubling(), run_id="one", parameters_file=params_file(workdir, x=3, other=1))
    second = run(doubling(), run_id="two", parameters_file=params_file(workdir, x=3, other=2))
    assert cached_from(second, "double") == "one"


def scaled(factor: int, x: int) -> int:
    note(f"scaled {factor} {x}")
    return factor * x


def test_a_partial_is_keyed_by_the_values_it_fixes(run: Run, workdir: Path) -> None:
    def scaling(function: Callable[..., int]) -> Pipeline:
        step = PythonTask(name="scale", function=function, returns=["y"], cache=True)
        return Pipeline(steps=[step])

    params = params_file(workdir, x=3)
    run(scaling(functools.partial(scaled, 2)), run_id="two", parameters_file=params)
    again = run(scaling(functools.partial(scaled, 2)), run_id="again", parameters_file=params)
    three = run(scaling(functools.partial(scaled, 3)), run_id="three", parameters_file=params)
    keyword = run(scaling(functools.partial(scaled, factor=5)), run_id="kw", parameters_file=params)

    assert ran(workdir) == ["scaled 2 3", "scaled 3 3", "scaled 5 3"]
    assert cached_from(again, "scale") == "two"
    assert cached_from(three, "scale") is None and three.parameters["y"].value == 9
    assert cached_from(keyword, "scale") is None and keyword.parameters["y"].value == 15


def test_without_cache_the_step_always_runs(run: Run, workdir: Path) -> None:
    params = params_file(workdir, x=3)
    run(doubling(cache=None), run_id="one", parameters_file=params)
    run(doubling(cache=None), run_id="two", parameters_file=params)
    assert ran(workdir) == ["double 3", "double 3"]
    assert not (workdir / ".catalog" / ".cache").exists()


def test_the_configuration_caches_every_task_unless_it_says_no(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "cached.yaml"
    location = workdir / "shared-cache"
    config.write_text(
        f"pipeline-executor: {{type: local}}\ncache: {{default: true, location: {location}}}\n",
        encoding="utf-8",
    )

    def pipeline() -> Pipeline:
        return Pipeline(
            steps=[
                PythonTask(name="double", function=double, returns=["y"]),
                ShellTask(name="never", command="echo shell >> ran.txt", cache=False),
            ]
        )

    params = params_file(workdir, x=5)
    pipeline().execute(configuration_file=str(config), run_id="one", parameters_file=params)
    second = pipeline().execute(
        configuration_file=str(config), run_id="two", parameters_file=params
    )
    assert ran(workdir) == ["double 5", "shell", "shell"]
    assert cached_from(second, "double") == "one"
    assert list((location / "packs").iterdir())  # the configured location
    assert not (workdir / ".catalog" / ".cache").exists()


MODULE = """
from pathlib import Path


def helper():
    return "{helper}"


def work(x: int) -> int:
    with open("ran.txt", "a") as handle:
        handle.write("work\\n")
    return x + {offset}
"""


def test_changed_code_runs_the_step_again(
    run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cache_steps_{uuid.uuid4().hex[:8]}"
    path = workdir / f"{name}.py"
    monkeypatch.syspath_prepend(str(workdir))
    params = params_file(workdir, x=1)

    def run_with(run_id: str, offset: int, helper: str) -> RunLog:
        path.write_text(MODULE.format(offset=offset, helper=helper), encoding="utf-8")
        importlib.invalidate_caches()
        module = importlib.reload(sys.modules[name]) if name in sys.modules else None
        module = module or importlib.import_module(name)
        task = PythonTask(name="work", function=module.work, returns=["y"], cache=True)
        return run(Pipeline(steps=[task]), run_id=run_id, parameters_file=params)

    try:
        run_with("original", offset=10, helper="a")
        same = run_with("same-code", offset=10, helper="a")
        other_function = run_with("helper-changed", offset=10, helper="b")
        changed = run_with("work-changed", offset=20, helper="b")
    finally:
        sys.modules.pop(name, None)

    assert cached_from(same, "work") == "original"
    assert cached_from(other_function, "work") == "original"  # only the step's own source
    assert cached_from(changed, "work") is None
    assert changed.parameters["y"].value == 21
    assert ran(workdir) == ["work", "work"]


def write_data(size: int) -> None:
    Path("data.txt").write_text("x" * size, encoding="utf-8")


def measure() -> int:
    note("measure")
    return len(Path("data.txt").read_text(encoding="utf-8"))


def measuring() -> Pipeline:
    return Pipeline(
        steps=[
            PythonTask(name="write", function=write_data, catalog=Catalog(put=["data.txt"])),
            PythonTask(
                name="measure",
                function=measure,
                returns=["length"],
                catalog=Catalog(get=["data.txt"]),
                cache=True,
            ),
        ]
    )


def test_a_changed_get_file_runs_the_step_again(run: Run, workdir: Path) -> None:
    run(measuring(), run_id="one", parameters_file=params_file(workdir, size=3))
    same = run(measuring(), run_id="two", parameters_file=params_file(workdir, size=3))
    changed = run(measuring(), run_id="three", parameters_file=params_file(workdir, size=4))

    assert ran(workdir) == ["measure", "measure"]
    assert cached_from(same, "measure") == "one"
    assert cached_from(changed, "measure") is None
    assert changed.parameters["length"].value == 4
    gets = [r for r in same.step("measure").data_catalog if r.stage == "get"]
    assert [r.name for r in gets] == ["data.txt"]


def write_notebook(path: Path, source: str, markdown: str = "A notebook") -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    parameters = nbformat.v4.new_code_cell("x = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        nbformat.v4.new_markdown_cell(markdown),
        parameters,
        nbformat.v4.new_code_cell(source),
    ]
    nbformat.write(notebook, str(path))


@pytest.mark.timeout(180)
def test_a_changed_notebook_runs_the_step_again(run: Run, workdir: Path) -> None:
    notebook = workdir / "square.ipynb"
    params = params_file(workdir, x=3)
    body = "open('ran.txt', 'a').write('notebook\\n')\nsquare = x * {power}\nprint(square)"

    def run_with(run_id: str, power: int, markdown: str = "A notebook") -> RunLog:
        write_notebook(notebook, body.format(power=power), markdown)
        task = NotebookTask(name="square", notebook="square.ipynb", returns=["square"], cache=True)
        return run(Pipeline(steps=[task]), run_id=run_id, parameters_file=params)

    run_with("first", power=2)
    markdown_only = run_with("markdown-changed", power=2, markdown="Squares, explained")
    changed = run_with("cell-changed", power=3)

    assert cached_from(markdown_only, "square") == "first"
    assert cached_from(changed, "square") is None
    assert changed.parameters["square"].value == 9
    assert ran(workdir) == ["notebook", "notebook"]
    # The hit restored the executed notebook into its own run's catalog.
    executed = workdir / ".catalog" / "markdown-changed" / "square-square_out.ipynb"
    assert "6" in json.dumps(json.loads(executed.read_text(encoding="utf-8"))["cells"][2])


class Model:
    def __init__(self, weights: list[float]) -> None:
        self.weights = weights


def train(rate: float) -> tuple[Model, float]:
    note("train")
    Path("report").mkdir(exist_ok=True)
    Path("report/weights.txt").write_text(f"rate={rate}\n", encoding="utf-8")
    print(f"trained at rate {rate}")
    return Model([rate, rate * 2]), 0.9


def evaluate(model: Model) -> float:
    note("evaluate")
    assert Path("report/weights.txt").read_text(encoding="utf-8") == "rate=0.5\n"
    return sum(model.weights)


def training() -> Pipeline:
    return Pipeline(
        steps=[
            PythonTask(
                name="train",
                function=train,
                returns=[pickled("model"), metric("accuracy")],
                catalog=Catalog(put=["report/weights.txt"]),
                cache=True,
            ),
            PythonTask(
                name="evaluate",
                function=evaluate,
                returns=["total"],
                catalog=Catalog(get=["report/weights.txt"]),
            ),
        ]
    )


def test_pickled_returns_and_put_files_are_restored(run: Run, workdir: Path, step_log: Any) -> None:
    params = params_file(workdir, rate=0.5)
    run(training(), run_id="first", parameters_file=params)
    (workdir / "report" / "weights.txt").unlink()  # only the catalog can give it back
    second = run(training(), run_id="second", parameters_file=params)

    assert ran(workdir) == ["train", "evaluate", "evaluate"]
    assert cached_from(second, "train") == "first"
    assert second.parameters["total"].value == 1.5  # evaluate used the restored model
    assert second.step("train").attempts[-1].user_defined_metrics == {"accuracy": 0.9}
    restored = workdir / ".catalog" / "second" / "report" / "weights.txt"
    assert restored.read_text(encoding="utf-8") == "rate=0.5\n"
    puts = [r for r in second.step("train").data_catalog if r.stage == "put"]
    assert [(r.name, r.catalog_relative_path) for r in puts] == [
        ("report/weights.txt", "second/report/weights.txt")
    ]
    log = step_log("train", run_id="second")
    assert "from the cache; run first printed" in log and "trained at rate 0.5" in log


def unusual_values() -> tuple[float, dict[str, Any]]:
    note("unusual")
    return float("nan"), {"name": "café ☕", "big": 10**30, "ceiling": float("inf")}


def test_values_json_writes_unusually_come_back_from_the_cache_as_they_were(
    run: Run, workdir: Path
) -> None:
    pipeline = Pipeline(
        steps=[
            PythonTask(
                name="unusual",
                function=unusual_values,
                returns=[metric("score"), "info"],
                cache=True,
            )
        ]
    )
    run(pipeline, run_id="first")
    second = run(pipeline, run_id="second")

    assert ran(workdir) == ["unusual"]
    assert cached_from(second, "unusual") == "first"
    assert math.isnan(second.parameters["score"].value)
    info = second.parameters["info"].value
    assert info == {"name": "café ☕", "big": 10**30, "ceiling": float("inf")}


SETTINGS: dict[str, Any] = {}


def make_settings() -> dict[str, Any]:
    note("settings")
    SETTINGS.update(layers=[1, 2])
    return SETTINGS  # a value the module keeps, not a copy


def grow_settings() -> None:
    SETTINGS["layers"].append(3)  # not through a parameter: binding copies those


def test_a_value_changed_in_place_after_its_step_is_stored_as_returned(
    run: Run, workdir: Path
) -> None:
    pipeline = Pipeline(
        steps=[
            PythonTask(name="make", function=make_settings, returns=["settings"], cache=True),
            PythonTask(name="grow", function=grow_settings),
        ]
    )
    run(pipeline, run_id="first")
    assert SETTINGS == {"layers": [1, 2, 3]}  # changed while its entry waited to be written
    second = run(pipeline, run_id="second")

    assert ran(workdir) == ["settings"]
    assert cached_from(second, "make") == "first"
    assert second.parameters["settings"].value == {"layers": [1, 2]}


@pytest.mark.parametrize("damage", ["entry", "blob"])
def test_a_corrupt_entry_runs_the_step_again_with_a_warning(
    run: Run,
    workdir: Path,
    damage: str,
    capsys: pytest.CaptureFixture[str],
    step_log: Any,
) -> None:
    params = params_file(workdir, rate=0.5)
    run(training(), run_id="first", parameters_file=params)
    cache = workdir / ".catalog" / ".cache"
    if damage == "entry":  # each line cut short, as a failing disk might leave it
        for pack in (cache / "packs").iterdir():
            lines = pack.read_bytes().splitlines()
            pack.write_bytes(b"".join(line[: len(line) // 2] + b"\n" for line in lines))
    else:
        for path in (cache / "blobs").iterdir():
            path.write_bytes(b"\x00not what was written")
    capsys.readouterr()

    second = run(training(), run_id="second", parameters_file=params)
    third = run(training(), run_id="third", parameters_file=params)

    assert second.status == "SUCCESS"
    assert cached_from(second, "train") is None
    assert ran(workdir).count("train") == 2
    out = capsys.readouterr().out
    assert "warning  train: cache entry" in out and "ran the step again" in out
    assert "could not be used" in step_log("train", run_id="second")
    assert cached_from(third, "train") == "second"  # the entry was stored anew


SECRET = "s3cr3t-" + uuid.uuid4().hex


def use_secret() -> int:
    note("use_secret")
    print(f"token is {os.environ['API_TOKEN']}")
    return len(os.environ["API_TOKEN"])


def leak_secret() -> str:
    note("leak_secret")
    return os.environ["API_TOKEN"]


def test_secrets_are_never_part_of_a_key_or_an_entry(
    run: Run,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def pipeline() -> Pipeline:
        return Pipeline(
            steps=[
                PythonTask(
                    name="use",
                    function=use_secret,
                    returns=["length"],
                    secrets=["API_TOKEN"],
                    cache=True,
                ),
                PythonTask(
                    name="leak",
                    function=leak_secret,
                    returns=["token"],
                    secrets=["API_TOKEN"],
                    cache=True,
                ),
            ]
        )

    monkeypatch.setenv("API_TOKEN", SECRET)
    run(pipeline(), run_id="first")
    monkeypatch.setenv("API_TOKEN", SECRET + "-rotated")  # not part of the key
    second = run(pipeline(), run_id="second")

    assert cached_from(second, "use") == "first"
    assert cached_from(second, "leak") is None  # its return holds the secret: not stored
    assert "leak: not cached: return 'token' holds the value of secret API_TOKEN" in (
        capsys.readouterr().out
    )
    files = cache_files(workdir)
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert ran(workdir) == ["use_secret", "leak_secret", "leak_secret"]


def score(item: int) -> int:
    note(f"score {item}")
    return item * 10


def mapping() -> Pipeline:
    branch = Pipeline(steps=[PythonTask(name="score", function=score, returns=["s"], cache=True)])
    return Pipeline(steps=[Map(name="grid", branch=branch, iterate_on="items", iterate_as="item")])


def test_each_map_iteration_caches_by_its_own_item(
    run: Run, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(mapping(), run_id="three", parameters_file=params_file(workdir, items=[1, 2, 3]))
    four = run(mapping(), run_id="four", parameters_file=params_file(workdir, items=[1, 2, 3, 4]))

    assert sorted(ran(workdir)) == ["score 1", "score 2", "score 3", "score 4"]  # one more ran
    assert four.parameters["s"].value == [10, 20, 30, 40]
    assert [cached_from(four, f"grid.{i}.score") for i in (1, 2, 3, 4)] == [
        "three",
        "three",
        "three",
        None,
    ]
    out = capsys.readouterr().out
    assert "Cached:    3 of 4 tasks came from the cache (run three)" in out
    assert re.search(r"done     grid \(\d\.\d\d s, 3 steps from the cache\)", out), out


def test_a_shell_iteration_is_keyed_by_its_item_not_the_whole_list(run: Run, workdir: Path) -> None:
    step = ShellTask(name="echo", command='echo "shell $item" >> ran.txt', returns=[], cache=True)
    pipeline = Pipeline(
        steps=[
            Map(
                name="grid",
                branch=Pipeline(steps=[step]),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )
    run(pipeline, run_id="two", parameters_file=params_file(workdir, items=[1, 2]))
    three = run(pipeline, run_id="three", parameters_file=params_file(workdir, items=[1, 2, 3]))
    assert sorted(ran(workdir)) == ["shell 1", "shell 2", "shell 3"]
    assert cached_from(three, "grid.3.echo") is None
    assert cached_from(three, "grid.1.echo") == "two"


def test_a_mocked_run_does_not_use_the_cache(workdir: Path) -> None:
    params = params_file(workdir, x=3)
    local = workdir / "local.yaml"
    local.write_text("pipeline-executor: {type: local}\n", encoding="utf-8")
    doubling().execute(configuration_file=str(local), run_id="real", parameters_file=params)
    mocked = workdir / "mocked.yaml"
    mocked.write_text("pipeline-executor: {type: mocked}\n", encoding="utf-8")
    run_log = doubling().execute(
        configuration_file=str(mocked), run_id="mocked", parameters_file=params
    )
    assert run_log.step("double").mock and cached_from(run_log, "double") is None


SHELL = textwrap.dedent(
    """\
    echo "shell $n" >> ran.txt
    export total=$((n * 2))
    """
)


def test_a_shell_step_is_keyed_by_its_command_and_parameters(run: Run, workdir: Path) -> None:
    def pipeline(command: str = SHELL) -> Pipeline:
        return Pipeline(
            steps=[ShellTask(name="sh", command=command, returns=["total"], cache=True)]
        )

    params = params_file(workdir, n=2)
    run(pipeline(), run_id="one", parameters_file=params)
    same = run(pipeline(), run_id="two", parameters_file=params)
    other_n = run(pipeline(), run_id="three", parameters_file=params_file(workdir, n=3))
    other_command = run(pipeline(SHELL + "true\n"), run_id="four", parameters_file=params)

    assert cached_from(same, "sh") == "one" and same.parameters["total"].value == 4
    assert cached_from(other_n, "sh") is None and cached_from(other_command, "sh") is None
    assert ran(workdir) == ["shell 2", "shell 3", "shell 2"]


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "a-file").write_text("not a folder", encoding="utf-8")
    config = workdir / "cached.yaml"
    location = workdir / "a-file" / "cache"
    config.write_text(
        f"pipeline-executor: {{type: local}}\ncache: {{location: {location}}}\n", encoding="utf-8"
    )
    pipeline = doubling()
    params = params_file(workdir, x=5)

    first = pipeline.execute(configuration_file=str(config), run_id="one", parameters_file=params)
    second = pipeline.execute(configuration_file=str(config), run_id="two", parameters_file=params)

    assert first.status == second.status == "SUCCESS"
    assert ran(workdir) == ["double 5", "double 5"]  # nothing was stored, so it ran again
    out = capsys.readouterr().out
    assert out.count("double: not cached: the entry could not be stored (NotADirectoryError") == 2
    read = f"double: the step cache at {location} could not be read (NotADirectoryError"
    assert out.count(read) == 2
    assert "could not be used" not in out  # no entry was found, so none was damaged


def fit_model(item: int) -> Model:
    note(f"fit {item}")
    return Model([float(item)])


def best_of(models: list[Model]) -> float:
    note("best")
    return max(m.weights[0] for m in models)


def fitting() -> Pipeline:
    fit = PythonTask(name="fit", function=fit_model, returns=[pickled("models")], cache=True)
    return Pipeline(
        steps=[
            Map(name="grid", branch=Pipeline(steps=[fit]), iterate_on="items", iterate_as="item"),
            PythonTask(name="best", function=best_of, returns=["best"], cache=True),
        ]
    )


def test_a_list_of_cached_pickled_returns_keys_the_step_that_reads_it(
    run: Run, workdir: Path
) -> None:
    """The list a Map makes of its cached iterations' pickled returns is keyed by their
    digests, carried from the steps that made them or from their entries: a rerun finds
    the reading step's entry, and a changed item changes its key."""
    run(fitting(), run_id="first", parameters_file=params_file(workdir, items=[1, 2]))
    again = run(fitting(), run_id="again", parameters_file=params_file(workdir, items=[1, 2]))
    other = run(fitting(), run_id="other", parameters_file=params_file(workdir, items=[1, 3]))

    lines = ran(workdir)  # the iterations run at once, in either order
    assert sorted(lines[:2]) == ["fit 1", "fit 2"] and lines[2:] == ["best", "fit 3", "best"]
    assert cached_from(again, "best") == "first" and again.parameters["best"].value == 2.0
    assert cached_from(other, "grid.1.fit") == "first" and cached_from(other, "best") is None
    assert other.parameters["best"].value == 3.0


def test_the_cached_summary_counts_a_big_maps_items_without_reading_them(
    run: Run, workdir: Path, capsys: pytest.CaptureFixture[str], items_read: list[str]
) -> None:
    """The items of a map held packed are counted in their JSON: a map of 100,000 cached
    items took 10 s and 1 GB to count as objects, after the run."""
    run(mapping(), run_id="first", parameters_file=params_file(workdir, items=list(range(200))))
    capsys.readouterr()
    items_read.clear()

    items = params_file(workdir, items=list(range(250)))
    more = run(mapping(), run_id="more", parameters_file=items)

    assert "Cached:    200 of 250 tasks came from the cache (run first)" in capsys.readouterr().out
    assert items_read == []
    sources = [more.step(f"grid.{i}.score").attempts[-1].cached_from for i in range(250)]
    assert sources == ["first"] * 200 + [None] * 50  # the objects say the same
