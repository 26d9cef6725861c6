"""Initial parameters: the YAML file, then RUNNABLE_PRM_<name> on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runnable_dask import ConfigurationError, Pipeline, PythonTask
from runnable_dask.parameters import load_parameters


def values(params: dict[str, Any]) -> dict[str, Any]:
    return {name: param.value for name, param in params.items()}


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_top_level_keys_of_the_yaml_file(workdir: Path) -> None:
    path = write(
        workdir / "params.yaml",
        "integer: 1\nfloater: 3.14\nstringer: hello\nlister: [1, 2]\npydantic_param:\n  x: 10\n",
    )
    params = load_parameters(path, environ={})
    assert values(params) == {
        "integer": 1,
        "floater": 3.14,
        "stringer": "hello",
        "lister": [1, 2],
        "pydantic_param": {"x": 10},
    }
    assert {p.kind for p in params.values()} == {"json"}


def test_environment_wins_over_the_file(workdir: Path) -> None:
    path = write(workdir / "params.yaml", "integer: 1\nstringer: hello\n")
    params = load_parameters(path, environ={"RUNNABLE_PRM_integer": "2", "OTHER": "x"})
    assert values(params) == {"integer": 2, "stringer": "hello"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        ("2.5", 2.5),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("true", True),
        ('"quoted"', "quoted"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_environment_values_are_json_decoded_when_they_parse(raw: str, expected: Any) -> None:
    params = load_parameters("", environ={"RUNNABLE_PRM_value": raw})
    assert params["value"].value == expected


def test_environment_names_are_lower_cased() -> None:
    params = load_parameters("", environ={"RUNNABLE_PRM_MY_PARAM": "1", "RUNNABLE_PRM_": "x"})
    assert values(params) == {"my_param": 1}


def test_no_file_and_no_variables_means_no_parameters() -> None:
    assert load_parameters("", environ={}) == {}


def test_an_empty_file_means_no_parameters(workdir: Path) -> None:
    assert load_parameters(write(workdir / "empty.yaml", ""), environ={}) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "- 1\n- 2\n", r"must map names to values at the top level.*got a list", id="list"
        ),
        pytest.param("just a string\n", r"got a str", id="scalar"),
        pytest.param("a: [unclosed\n", r"is not valid YAML", id="invalid yaml"),
        pytest.param(
            "my-name: 1\n2: x\n", r"names \['my-name', 2\] are not identifiers", id="names"
        ),
    ],
)
def test_bad_parameters_files_are_refused(workdir: Path, text: str, message: str) -> None:
    path = write(workdir / "params.yaml", text)
    with pytest.raises(ConfigurationError, match=message):
        load_parameters(path, environ={})


def test_a_missing_file_is_named(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read parameters file 'missing\.yaml'"):
        load_parameters("missing.yaml", environ={})


def test_a_run_reads_the_file_and_the_environment(
    run: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def read(integer: int, stringer: str, lister: list) -> None:
        seen.update(integer=integer, stringer=stringer, lister=lister)

    path = write(workdir / "params.yaml", "integer: 1\nstringer: hello\nlister: [1]\n")
    monkeypatch.setenv("RUNNABLE_PRM_stringer", "from the environment")
    run_log = run(Pipeline(steps=[PythonTask(name="read", function=read)]), parameters_file=path)
    assert seen == {"integer": 1, "stringer": "from the environment", "lister": [1]}
    assert run_log.parameters["stringer"].value == "from the environment"
    first = run_log.steps["read"].attempts[0]
    assert first.input_parameters["integer"].value == 1
