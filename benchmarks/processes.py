"""What the benchmark's child processes share: a clean environment and a copy of files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# Python as a user runs it keeps compiled modules (``__pycache__``). Where this process
# was told not to write them (PYTHONDONTWRITEBYTECODE=1, as in the helpers' sessions),
# runnable_dask, installed editable from its source folder, was compiled anew by every
# child (0.08-0.18 s of CPU a seed run, medians at load 10; docs/benchmarks.md), while
# runnable 0.50.0's wheel came with the compiled modules pip wrote.
_NOT_PASSED = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``RUNNABLE_*``, ``PYTHONPATH`` and
    ``PYTHONDONTWRITEBYTECODE``, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("RUNNABLE_") and name not in _NOT_PASSED
    }
    env.update(extra)
    return env


def copy_examples(folder: Path, library: str) -> Path:
    """A copy of the repository's ``examples/`` in ``folder``, importing from ``library``."""
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "examples", folder / "examples")
    if library != "runnable_dask":
        for script in (folder / "examples").rglob("*.py"):
            text = script.read_text(encoding="utf-8")
            script.write_text(
                text.replace("from runnable_dask import", f"from {library} import"),
                encoding="utf-8",
            )
    return folder
