"""The three functions the task graph calls: run a step, join a parallel, end a branch.

Each takes the tokens of its possible predecessors, finds the one that sends control to
it, and otherwise passes :data:`NOT_REACHED` on at once. None of them waits for another
task: Dask starts each when its inputs exist, so nesting never deadlocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runnable_dask.plan import Node
from runnable_dask.runtime.attempt import attempt_record, now, run_attempt
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.tokens import (
    BRANCH_NOT_REACHED,
    NOT_REACHED,
    BranchEnd,
    Token,
    arrived,
    summarise,
)
from runnable_dask.stores.catalog import RunCatalog


@dataclass(frozen=True, slots=True)
class StepCall:
    """A step node as its task sees it: the label that reaches it, and whether it opens
    a branch (so the branch's record of changed names starts empty)."""

    node: Node
    accept: str
    opens_branch: bool

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # Dask hashes every argument of a submitted graph; the internal name identifies
        # the step, where hashing its whole definition cost seconds on wide pipelines.
        return ("StepCall", self.node.internal_name, self.accept, str(self.opens_branch))


@dataclass(frozen=True, slots=True)
class EndCall:
    """A branch's end: which labels lead to which terminal node."""

    branch: str
    terminals: dict[str, tuple[str, str]]
    opens_branch: bool
    is_root: bool

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("EndCall", self.branch, str(self.opens_branch), *sorted(self.terminals))


def run_step(ctx: RunContext, call: StepCall, *incoming: Token) -> Token:
    """Run a task or stub if control reaches it; route to its next node."""
    token = arrived(incoming, call.accept)
    if token is None:
        return NOT_REACHED
    node = call.node
    changed = frozenset() if call.opens_branch else token.changed
    started = now()
    if node.kind == "stub":  # a stub ends as it starts: its one record says both
        ok, attempt, outputs, records = True, attempt_record(started, token.params), {}, []
    else:
        ctx.report(_start_event(node.internal_name, node.name, node.kind, started))
        catalog = RunCatalog(ctx.catalog_location, ctx.run_id)
        result = run_attempt(node.step, node.internal_name, token.params, catalog, started)
        ok, attempt = result.ok, result.attempt
        outputs, records = result.outputs, result.data_catalog
    ctx.report(
        _step_event(
            node.internal_name,
            node.name,
            node.kind,
            attempt["status"],
            attempt["message"],
            [attempt],
            records,
        )
    )
    if not ok:
        return Token(target=node.on_failure, params=token.params, changed=changed)
    return Token(
        target=node.on_success,
        params={**token.params, **outputs},
        changed=changed | outputs.keys(),
    )


def run_parallel(
    ctx: RunContext, call: StepCall, ends: list[BranchEnd], incoming: list[Token]
) -> Token:
    """Join a Parallel's branches: merge their returns in branch order, then route."""
    token = arrived(tuple(incoming), call.accept)
    if token is None:
        return NOT_REACHED
    node = call.node
    changed = frozenset() if call.opens_branch else token.changed
    failed = [b.key for b, end in zip(node.branches, ends, strict=True) if end.status != "SUCCESS"]
    message = f"branches failed: {', '.join(failed)}" if failed else ""
    ctx.report(
        _step_event(
            node.internal_name,
            node.name,
            node.kind,
            "FAIL" if failed else "SUCCESS",
            message,
            [],
            [],
        )
    )
    if failed:
        return Token(target=node.on_failure, params=token.params, changed=changed)
    params = dict(token.params)
    for end in ends:
        for name in end.changed:
            params[name] = end.params[name]
        changed = changed | end.changed
    return Token(target=node.on_success, params=params, changed=changed)


def run_branch_end(ctx: RunContext, call: EndCall, *incoming: Token) -> BranchEnd:
    """Record the terminal that control reached; give the branch's status and scope."""
    for token in incoming:
        if token.target in call.terminals:
            break
    else:
        return BRANCH_NOT_REACHED
    internal_name, kind = call.terminals[token.target]
    started = now()
    name = internal_name.rsplit(".", 1)[-1]
    status: Literal["SUCCESS", "FAIL"] = "SUCCESS" if kind == "success" else "FAIL"
    attempt = attempt_record(started, token.params)
    changed = frozenset() if call.opens_branch else token.changed
    ctx.report(
        {
            "event": "run_end" if call.is_root else "branch",
            "terminal": _step_event(internal_name, name, kind, "SUCCESS", "", [attempt], []),
            "internal_name": call.branch,
            "status": status,
            "parameters": summarise(token.params),
        }
    )
    if call.is_root:
        return BranchEnd(status=status)
    return BranchEnd(status=status, params=token.params, changed=changed)


def _start_event(internal_name: str, name: str, step_type: str, started: str) -> dict[str, Any]:
    return {
        "event": "start",
        "internal_name": internal_name,
        "name": name,
        "step_type": step_type,
        "start_time": started,
    }


def _step_event(
    internal_name: str,
    name: str,
    step_type: str,
    status: str,
    message: str,
    attempts: list[dict[str, Any]],
    data_catalog: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "event": "step",
        "internal_name": internal_name,
        "name": name,
        "step_type": step_type,
        "status": status,
        "message": message,
        "attempts": attempts,
        "data_catalog": data_catalog,
    }
