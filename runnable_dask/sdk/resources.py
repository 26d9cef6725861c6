"""What a step asks of the worker that runs it: Dask worker resources, checked when built.

``resources={"GPU": 1, "MEMORY": 16e9}`` on a task, or on a composite for every task
inside it. The names are free (a worker offers what it was started with:
``dask worker ADDRESS --resources "GPU=1"``); amounts are positive numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Resources = dict[str, float]


def check_resources(value: Any) -> Resources:
    """``value`` as a mapping of resource names to positive amounts, or a clear error."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"resources must be a mapping of names to amounts, e.g. {{'GPU': 1}}, got {value!r}"
        )
    problems = []
    for name, amount in value.items():
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "=, "):
            problems.append(
                f"resource name {name!r} must be a non-empty string without '=', ',' or spaces "
                '(as `dask worker --resources "GPU=1"` names it)'
            )
        elif (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
            or amount <= 0
        ):
            problems.append(
                f"resource {name!r} asks for {amount!r}; "
                f"give a positive number, e.g. {{{name!r}: 1}}"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return {name: float(amount) for name, amount in value.items()}


def merge(outer: Resources, inner: Resources | None) -> Resources:
    """A step's resources inside a composite: its own amounts win, names add up.

    ``Map(resources={"GPU": 1})`` around ``PythonTask(resources={"MEMORY": 8e9})`` asks
    for both; the task's ``{"GPU": 2}`` would replace the map's ``GPU``.
    """
    return {**outer, **inner} if inner else outer


def describe(resources: Mapping[str, float]) -> str:
    """``GPU=1, MEMORY=8e9``: as ``dask worker --resources`` spells them."""
    return ", ".join(f"{name}={amount_text(amount)}" for name, amount in sorted(resources.items()))


def amount_text(amount: float) -> str:
    """``1``, ``0.5``, ``8e9``: short, and read back by ``dask worker --resources``."""
    return f"{amount:g}".replace("e+0", "e").replace("e+", "e")
