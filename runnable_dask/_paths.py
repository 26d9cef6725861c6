"""Make the folder a pipeline is started from importable, as runnable users expect.

Pipelines import their own code by its path from the project's root
(``from examples.common.functions import hello``) while the script itself lives deeper
(``python examples/06-parallel/parallel.py`` puts only ``examples/06-parallel`` on
``sys.path``). Appending the working folder makes those imports work in the driver and,
because spawned Dask workers inherit ``sys.path``, on local worker processes too.
"""

from __future__ import annotations

import os
import sys


def make_working_folder_importable() -> None:
    """Append the current working folder to ``sys.path`` unless it is there already."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
