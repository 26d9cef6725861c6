"""What flows along the edges of the task graph: control and the parameters in scope.

A step's task returns a :class:`Token` naming the node that control goes to next and
carrying the parameters visible there. Tasks that control never reaches still run (they
are in the graph) but only pass :data:`NOT_REACHED` on, doing nothing.
Values stay in the tokens, so pickled objects move worker to worker and never through
the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from runnable_dask.compact import Compact
from runnable_dask.runtime.described import describe
from runnable_dask.sdk.returns import ReturnKind

ParamKind = ReturnKind
"""A parameter's kind is that of the return that made it."""


@dataclass(frozen=True, slots=True)
class Param(Compact):
    """A parameter's value and how it is kept (as runnable records it)."""

    kind: ParamKind
    value: Any
    digest: str = field(default="", compare=False)
    """A pickled value's content digest for cache keys, once a cached step has made it
    (see ``cache_keys.value_digest``): the steps that read the value do not pickle it
    again to key themselves."""

    def summary(self, name: str) -> dict[str, Any]:
        """The run log's record: pickled values are named, never embedded (a structured
        one is described by its fields)."""
        if self.kind == "object":
            return {"kind": "object", "value": name, "description": describe(self.value)}
        return {"kind": self.kind, "value": self.value, "description": ""}


@dataclass(frozen=True, slots=True)
class Token(Compact):
    """Control arriving at ``target`` with ``params``; ``changed`` lists names set in scope.

    ``changed`` restarts empty in each branch, so a composite step merges back exactly
    what its branches returned.
    """

    target: str | None
    params: dict[str, Param] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BranchEnd(Compact):
    """How a branch ended (``status`` None: not reached) and the values it set.

    Only the names set inside the branch travel back (``params`` holds just those), so
    the join of a map of many items does not receive many copies of the whole scope.
    """

    status: Literal["SUCCESS", "FAIL"] | None
    params: dict[str, Param] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()


NOT_REACHED = Token(target=None)
BRANCH_NOT_REACHED = BranchEnd(status=None)


@dataclass(frozen=True, slots=True)
class Bind(Compact):
    """A name a branch instance starts with: a map's item, or a loop's index.

    ``source`` names the list parameter the item is taken from; empty, the index itself
    is the value.
    """

    name: str
    index: int
    source: str = ""

    def param(self, params: dict[str, Param]) -> Param:
        if not self.source:
            return Param(kind="json", value=self.index)
        listed = params[self.source]
        kind: ParamKind = "object" if listed.kind == "object" else "json"
        return Param(kind=kind, value=listed.value[self.index])


@dataclass(frozen=True, slots=True)
class Entry(Compact):
    """How a task takes control: the label it answers to and, at a branch's start,
    whether the branch's record of changed names restarts and which name it binds."""

    label: str
    opens_branch: bool = False
    bind: Bind | None = None


def arrived(incoming: tuple[Token, ...], entry: Entry) -> Token | None:
    """The token among ``incoming`` that sends control to ``entry``, as the task sees it."""
    for token in incoming:
        if token.target == entry.label:
            break
    else:
        return None
    changed = frozenset() if entry.opens_branch else token.changed
    params = token.params
    if entry.bind is not None:
        params = {**params, entry.bind.name: entry.bind.param(params)}
    return Token(target=token.target, params=params, changed=changed)


def summarise(params: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """All parameters as run-log records."""
    return {name: param.summary(name) for name, param in params.items()}
