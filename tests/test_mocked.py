"""Mocked runs (``pipeline-executor: {type: mocked, config: {patches: ...}}``): the whole
pipeline is walked, unpatched tasks are recorded as succeeded without running, patched
ones run their replacement."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from runnable_dask import (
    ConfigurationError,
    Map,
    Parallel,
    Pipeline,
    PythonTask,
    ShellTask,
    Stub,
)

_module_numbers = itertools.count()


def mocked_config(workdir: Path, patches: dict[str, Any] | None = None) -> str:
    executor: dict[str, Any] = {"type": "mocked"}
    if patches is not None:
        executor["config"] = {"patches": patches}
    path = workdir / "mocked.yaml"
    path.write_text(yaml.safe_dump({"pipeline-executor": executor}), encoding="utf-8")
    return str(path)


def fakes_module(workdir: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """A module of replacement functions in the working folder; returns its name."""
    name = f"mocked_fakes_{next(_module_numbers)}"
    (workdir / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(workdir))
    return name


def side_effects(workdir: Path) -> Pipeline:
    """Every task leaves a file behind when it really runs."""

    def make() -> int:
        (workdir / "make.ran").write_text("ran", encoding="utf-8")
        return 5

    def use(x: int) -> int:
        (workdir / "use.ran").write_text(str(x), encoding="utf-8")
        return x + 1

    def work(item: int) -> None:
        (workdir / f"work-{item}.ran").write_text("ran", encoding="utf-8")

    return Pipeline(
        steps=[
            PythonTask(name="make", function=make, returns=["x"]),
            ShellTask(name="shell", command="touch shell.ran"),
            Parallel(
                name="par",
                branches={
                    "a": Pipeline(steps=[PythonTask(name="use", function=use, returns=["y"])]),
                    "b": Pipeline(steps=[Stub(name="nothing")]),
                },
            ),
            Map(
                name="m",
                branch=Pipeline(steps=[PythonTask(name="work", function=work)]),
                iterate_on="items",
                iterate_as="item",
            ),
        ]
    )


def run_mocked(workdir: Path, pipeline: Pipeline, config: str) -> Any:
    params = workdir / "params.yaml"
    params.write_text("items: [1, 2]\n", encoding="utf-8")
    return pipeline.execute(
        configuration_file=config, run_id="mocked-run", parameters_file=str(params)
    )


def ran_files(workdir: Path) -> list[str]:
    return sorted(p.name for p in workdir.glob("*.ran"))


def test_unpatched_tasks_are_recorded_as_successes_without_running(workdir: Path) -> None:
    run_log = run_mocked(workdir, side_effects(workdir), mocked_config(workdir))
    assert run_log.status == "SUCCESS"
    assert ran_files(workdir) == []
    assert list(run_log.steps) == ["make", "shell", "par", "m", "success"]
    tasks = ["make", "shell", "par.a.use", "m.1.work", "m.2.work"]
    for name in tasks:
        step = run_log.step(name)
        assert (step.status, step.mock) == ("SUCCESS", True), name
        assert [(a.attempt_number, a.status) for a in step.attempts] == [(1, "SUCCESS")]
        assert step.attempts[0].output_parameters == {}
    assert list(run_log.steps["m"].branches) == ["m.1", "m.2"]
    assert run_log.steps["par"].status == "SUCCESS"
    assert "x" not in run_log.parameters  # nothing ran, so nothing was returned
    assert "y" not in run_log.parameters


def test_a_mocked_config_without_a_config_key_still_mocks(workdir: Path) -> None:
    config = workdir / "bare.yaml"
    config.write_text("pipeline-executor:\n  type: mocked\n", encoding="utf-8")
    run_log = run_mocked(workdir, side_effects(workdir), str(config))
    assert run_log.status == "SUCCESS"
    assert ran_files(workdir) == []


def test_patched_steps_run_their_replacement(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = fakes_module(
        workdir,
        monkeypatch,
        "from pathlib import Path\n"
        "def fake_make():\n"
        "    Path('fake_make.ran').write_text('ran')\n"
        "    return 7\n"
        "def fake_use(x):\n"
        "    Path('fake_use.ran').write_text(str(x))\n"
        "    return x * 100, 'extra'\n",
    )
    patches = {
        "make": {"command": f"{module}.fake_make"},  # keeps the step's own returns (x)
        "use": {"command": f"{module}.fake_use", "returns": ["y", "note"]},
        "shell": {"command": 'echo "patched x=$x" > patched_shell.txt'},
    }
    run_log = run_mocked(workdir, side_effects(workdir), mocked_config(workdir, patches))

    assert run_log.status == "SUCCESS"
    assert ran_files(workdir) == ["fake_make.ran", "fake_use.ran"]  # not the originals
    assert (workdir / "fake_use.ran").read_text() == "7"
    assert (workdir / "patched_shell.txt").read_text().strip() == "patched x=7"
    assert not (workdir / "shell.ran").exists()
    make = run_log.steps["make"]
    assert make.status == "SUCCESS"
    assert make.attempts[0].output_parameters["x"].value == 7
    assert run_log.step("par.a.use").attempts[0].output_parameters["y"].value == 700
    assert run_log.parameters["x"].value == 7
    assert run_log.parameters["y"].value == 700
    assert run_log.parameters["note"].value == "extra"
    assert run_log.step("m.1.work").mock is True  # unpatched: still mocked


def test_a_patch_naming_no_task_is_refused_listing_the_tasks(workdir: Path) -> None:
    config = mocked_config(workdir, {"trian": {"command": "echo hi"}})
    with pytest.raises(ConfigurationError) as info:
        run_mocked(workdir, side_effects(workdir), config)
    message = str(info.value)
    assert "'trian'" in message
    assert "make, shell, use, work" in message
    assert ran_files(workdir) == []


def test_a_patch_that_cannot_be_imported_is_refused(workdir: Path) -> None:
    config = mocked_config(workdir, {"make": {"command": "no_such_module_xyz.fake"}})
    with pytest.raises(ConfigurationError) as info:
        run_mocked(workdir, side_effects(workdir), config)
    assert "no_such_module_xyz.fake" in str(info.value)
    assert "PythonTask 'make'" in str(info.value)
    assert ran_files(workdir) == []


def test_mocked_run_log_is_stored_like_any_other(
    workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    returned = run_mocked(workdir, side_effects(workdir), mocked_config(workdir))
    assert stored_run_log("mocked-run") == returned
    assert returned.run_config["pipeline-executor"]["type"] == "mocked"
