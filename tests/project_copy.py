"""The repository's examples and notebooks, copied once per test session to a temporary
folder that stands in for the repository root.

Tests run examples as a user does (``python examples/...`` from the project's root), and
those runs write run logs, catalogs and reports into the folder they start from: the copy
keeps all of that out of the checkout.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
_COPIED = ("examples", "notebooks")


@functools.cache
def project_root() -> Path:
    """A fresh copy of what the examples need, removed when the test process exits."""
    root = Path(tempfile.mkdtemp(prefix="runnable-dask-project-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for name in _COPIED:
        shutil.copytree(REPOSITORY / name, root / name, ignore=ignore)
    return root
