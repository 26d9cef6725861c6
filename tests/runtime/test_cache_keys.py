"""A pickled value's digest is its content's: the same whether its class was imported or
came by value, and from one driving process to the next."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runnable_dask.runtime.cache_keys import value_digest
from runnable_dask.runtime.tokens import Param

THINGS = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    name: str
    depth: int


def make():
    return [Config("forest", 4), {"depth": 4}]
"""

# A driving process: ships the project's code by value, as runs on a cluster of your own do.
SHIP = """
import sys, cloudpickle
import proj.things
cloudpickle.register_pickle_by_value(proj)
sys.stdout.buffer.write(cloudpickle.dumps(proj.things.make))
"""

# A worker in another folder: the project is not importable there.
DIGEST = """
import sys, cloudpickle
from runnable_dask.runtime.cache_keys import value_digest
from runnable_dask.runtime.tokens import Param
make = cloudpickle.loads(sys.stdin.buffer.read())
print(value_digest(Param("object", make())))
"""

REFERENCE = """
from runnable_dask.runtime.cache_keys import value_digest
from runnable_dask.runtime.tokens import Param
import proj.things
print(value_digest(Param("object", proj.things.make())))
"""


def python(code: str, cwd: Path, stdin: bytes = b"") -> bytes:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, input=stdin, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_a_value_of_a_class_shipped_by_value_has_its_importable_digest(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "proj").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "proj" / "__init__.py").write_text("", encoding="utf-8")
    (project / "proj" / "things.py").write_text(THINGS, encoding="utf-8")

    reference = python(REFERENCE, project).strip()
    shipped = [python(SHIP, project) for _ in range(2)]  # two runs, two driving processes
    digests = [python(DIGEST, elsewhere, blob).strip() for blob in shipped]

    assert shipped[0] != shipped[1]  # cloudpickle's bytes differ from process to process
    assert digests == [reference, reference]


def test_values_holding_different_lambdas_keep_different_digests() -> None:
    """A lambda has no name to write: it is still pickled by value, by its code."""
    first = value_digest(Param("object", [lambda x: x]))
    second = value_digest(Param("object", [lambda x: x + 1]))
    assert first != second
