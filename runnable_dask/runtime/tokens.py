"""What flows along the edges of the task graph: control and the parameters in scope.

A step's task returns a :class:`Token` naming the node that control goes to next and
carrying the parameters visible there. Tasks that control never reaches still run (they
are part of the one static graph) but only pass :data:`NOT_REACHED` on, doing nothing.
Values stay in the tokens, so pickled objects move worker to worker and never through
the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ParamKind = Literal["json", "object", "metric"]


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter's value and how it is kept (as runnable records it)."""

    kind: ParamKind
    value: Any

    def summary(self, name: str) -> dict[str, Any]:
        """The run log's record: pickled values are named, never embedded."""
        shown = name if self.kind == "object" else self.value
        return {"kind": self.kind, "value": shown, "description": ""}


@dataclass(frozen=True, slots=True)
class Token:
    """Control arriving at ``target`` with ``params``; ``changed`` lists names set in scope.

    ``changed`` restarts empty in each branch, so a composite step merges back exactly
    what its branches returned.
    """

    target: str | None
    params: dict[str, Param] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BranchEnd:
    """How a branch ended: its status and its final scope (``status`` None: not reached)."""

    status: Literal["SUCCESS", "FAIL"] | None
    params: dict[str, Param] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()


NOT_REACHED = Token(target=None)
BRANCH_NOT_REACHED = BranchEnd(status=None)


def arrived(incoming: tuple[Token, ...], label: str) -> Token | None:
    """The token among ``incoming`` that sends control to ``label``, if any."""
    for token in incoming:
        if token.target == label:
            return token
    return None


def summarise(params: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """All parameters as run-log records."""
    return {name: param.summary(name) for name, param in params.items()}
