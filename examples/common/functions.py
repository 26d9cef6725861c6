"""Functions the example pipelines run as PythonTasks.

They are ordinary Python: no runnable_dask import is needed to write a task. Arguments are
bound by name from the pipeline's parameters; what a function returns becomes parameters
for later steps (as named by the task's ``returns``).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

DATA_FOLDER = Path("data")


class EggsModel(BaseModel):
    """A nested part of the initial parameters."""

    ham: str


class ComplexParams(BaseModel):
    """A pydantic model built by the task from the ``pydantic_param`` dict parameter."""

    x: int
    foo: str
    eggs: EggsModel


class ObjectType:
    """An object that is not JSON-serialisable: it travels only as ``pickled``."""

    def __init__(self, salute: str = "hello") -> None:
        self.salute = salute

    def __repr__(self) -> str:
        return f"ObjectType(salute={self.salute!r})"


def hello() -> None:
    """Say hello: the simplest task there is."""
    print("Hello World!")


def raise_ex() -> None:
    """Always fail, to show how a pipeline handles a failing step."""
    raise RuntimeError("This step is meant to fail")


def read_initial_params(
    integer: int,
    floater: float,
    stringer: str,
    pydantic_param: ComplexParams,
    chunks: list[int],
) -> None:
    """Check the parameters from examples/common/initial_parameters.yaml, with their types.

    ``stringer`` may be overridden from the environment (RUNNABLE_PRM_stringer); every other
    value must be exactly what the file says.
    """
    print(f"integer={integer!r} floater={floater!r} stringer={stringer!r}")
    print(f"pydantic_param={pydantic_param!r} chunks={chunks!r}")
    assert integer == 1 and isinstance(integer, int)
    assert floater == 3.14 and isinstance(floater, float)
    assert isinstance(stringer, str) and stringer
    assert isinstance(pydantic_param, ComplexParams)
    assert pydantic_param.x == 10 and pydantic_param.foo == "bar"
    assert pydantic_param.eggs.ham == "Yes, please!!"
    assert chunks == [1, 2, 3]


def write_parameter() -> tuple[int, float, str, ComplexParams, ObjectType, float]:
    """Return one value of each kind: json (int, float, str, model), pickled and metric."""
    model = ComplexParams(x=10, foo="bar", eggs=EggsModel(ham="Yes, please!!"))
    return 1, 3.14, "hello", model, ObjectType(), 0.95


def read_parameter(
    integer: int,
    floater: float,
    stringer: str,
    pydantic_param: ComplexParams,
    obj: ObjectType,
    score: float,
) -> None:
    """Read back what ``write_parameter`` returned, each with its original type."""
    print(f"integer={integer} floater={floater} stringer={stringer}")
    print(f"pydantic_param={pydantic_param!r} obj={obj!r} score={score}")
    assert integer == 1
    assert floater == 3.14
    assert stringer == "hello"
    assert isinstance(pydantic_param, ComplexParams)
    assert pydantic_param.eggs.ham == "Yes, please!!"
    assert isinstance(obj, ObjectType) and obj.salute == "hello"
    assert score == 0.95


def read_shell_exports(shell_integer: int, shell_string: str, shell_list: list[int]) -> int:
    """Read what a shell step exported; return a new value for a later shell step."""
    print(f"shell_integer={shell_integer} shell_string={shell_string} shell_list={shell_list}")
    assert shell_integer == 41
    assert shell_string == "from the shell"
    assert shell_list == [1, 2, 3]
    return shell_integer + 1


def read_notebook_returns(nb_integer: int, nb_string: str, nb_dict: dict) -> None:
    """Read the values a notebook set and returned."""
    print(f"nb_integer={nb_integer} nb_string={nb_string} nb_dict={nb_dict}")
    assert nb_integer == 2
    assert nb_string == "hello from the notebook"
    assert nb_dict == {"ham": "Yes, please!!", "x": 11}


def write_files() -> None:
    """Write a CSV and a text file under data/ for the catalog to keep."""
    DATA_FOLDER.mkdir(exist_ok=True)
    (DATA_FOLDER / "data.csv").write_text("id,value\n1,10\n2,20\n", encoding="utf-8")
    (DATA_FOLDER / "hello.txt").write_text("Hello from python\n", encoding="utf-8")


def read_files() -> None:
    """Read back the files got from the catalog, including the one a shell step wrote."""
    assert (DATA_FOLDER / "data.csv").read_text(encoding="utf-8").startswith("id,value")
    assert (DATA_FOLDER / "hello.txt").read_text(encoding="utf-8") == "Hello from python\n"
    shell_text = (DATA_FOLDER / "shell.txt").read_text(encoding="utf-8")
    assert shell_text.strip() == "Hello from shell", shell_text
    notebook_text = (DATA_FOLDER / "notebook.txt").read_text(encoding="utf-8")
    assert notebook_text.strip() == "Hello from notebook", notebook_text
    print("read", sorted(os.listdir(DATA_FOLDER)))
