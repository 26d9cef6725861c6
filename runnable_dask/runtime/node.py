"""The functions the task graph calls for tasks, stubs, parallel joins and branch ends.

Each takes the tokens of its possible predecessors, finds the one that sends control to
it, and otherwise passes :data:`NOT_REACHED` on at once. None of them waits for another
task: Dask starts each when its inputs exist, so nesting never deadlocks. The composites
whose shape depends on values (Map, Conditional, Loop) are in
:mod:`runnable_dask.runtime.composites`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from runnable_dask.compact import Compact
from runnable_dask.plan import Node, fill
from runnable_dask.run_id import RUN_ID_ENV
from runnable_dask.runtime import checkpoint, step_cache
from runnable_dask.runtime.attempt import (
    attempt_record,
    note_secrets,
    run_attempt,
    task_environment,
)
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.events import BranchEnded, RunEnded, StepEnded, StepRetrying, StepStarted
from runnable_dask.runtime.starts import announced
from runnable_dask.runtime.tokens import (
    BRANCH_NOT_REACHED,
    NOT_REACHED,
    Bind,
    BranchEnd,
    Entry,
    Param,
    Token,
    arrived,
    summarise,
)
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.timestamps import now


@dataclass(frozen=True, slots=True)
class StepCall(Compact):
    """A node as its task sees it: how control enters, and which instance it is.

    ``items`` fill the node's placeholders (the map items and loop indexes above it);
    ``hidden`` names the lists of enclosing maps, kept out of per-item records;
    ``indexes`` names the indexes of enclosing loops, also set as environment variables;
    ``forwards``: in a branch of steps in a row, control that is not for this step (it
    goes to the branch's end) passes on through it.
    """

    node: Node
    entry: Entry
    items: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()
    indexes: tuple[str, ...] = ()
    forwards: bool = False

    @property
    def internal_name(self) -> str:
        return fill(self.node.internal_name, self.items)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Flat: a map's item differs from the next only by its item and index, and each
        # record pickled apart (the entry, its bind) is one more object per task that the
        # pickler holds until the whole graph is pickled (150 MB for 100,000 items).
        entry, bind = self.entry, self.entry.bind
        return _step_call, (
            self.node,
            entry.label,
            entry.opens_branch,
            *((bind.name, bind.index, bind.source) if bind is not None else (None, 0, "")),
            self.items,
            self.hidden,
            self.indexes,
            self.forwards,
        )

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # Dask hashes every argument of a submitted graph; the instance's name identifies
        # the step, where hashing its whole definition cost seconds on wide pipelines.
        return (
            "StepCall",
            self.internal_name,
            self.entry.label,
            str(self.entry.opens_branch),
            str(self.forwards),
        )

    def event(self, status: str, message: str = "", **fields: Any) -> StepEnded:
        """A step's record, as the driver receives it."""
        node = self.node
        return StepEnded(
            self.internal_name,
            node.internal_name,
            self.items,
            node.name,
            node.kind,
            status,
            message,
            **fields,
        )

    def retry_event(self, attempt: int, message: str, start: StepStarted) -> StepRetrying:
        """An attempt failed and attempt number ``attempt`` follows (the run log records
        every attempt with the step's end; this tells a live view the step is retrying)."""
        return StepRetrying(
            start.internal_name,
            start.template,
            start.items,
            start.name,
            start.step_type,
            start.start_time,
            attempt,
            message,
        )

    def start_event(self, started: str) -> StepStarted:
        """The step began: shown as running until its record arrives."""
        node = self.node
        return StepStarted(
            self.internal_name, node.internal_name, self.items, node.name, node.kind, started
        )


def _step_call(
    node: Node,
    label: str,
    opens_branch: bool,
    bind_name: str | None,
    bind_index: int,
    bind_source: str,
    items: tuple[str, ...],
    hidden: frozenset[str],
    indexes: tuple[str, ...],
    forwards: bool,
) -> StepCall:
    """A :class:`StepCall` from its flat pickled form."""
    bind = Bind(bind_name, bind_index, bind_source) if bind_name is not None else None
    return StepCall(node, Entry(label, opens_branch, bind), items, hidden, indexes, forwards)


@dataclass(frozen=True, slots=True)
class EndCall(Compact):
    """A branch instance's end: which labels lead to which terminal node.

    ``entry`` is set when the branch is only its terminal, so control arrives straight
    from the branch's start.
    """

    branch: str
    terminals: dict[str, tuple[str, str]]
    entry: Entry | None
    is_root: bool
    items: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("EndCall", fill(self.branch, self.items), *sorted(self.terminals))


def run_step(ctx: RunContext, call: StepCall, *incoming: Token) -> Token:
    """Run a task or stub if control reaches it; route to its next node."""
    token = arrived(incoming, call.entry)
    if token is None:
        return incoming[0] if call.forwards and incoming[0].target else NOT_REACHED
    node = call.node
    if node.kind == "stub" or ctx.skips(node):  # recorded as done, nothing runs
        attempt = attempt_record(now(), _shown(token.params, call.hidden))
        ctx.report(call.event("SUCCESS", attempts=[attempt], mock=node.kind != "stub"))
        return Token(target=node.on_success, params=token.params, changed=token.changed)
    catalog = RunCatalog(ctx.catalog_location, ctx.run_id)
    name = call.internal_name
    done = ctx.kept.load(name)
    if done is None:
        try:
            done = _run_task(ctx, call, token, catalog)  # a failure has no outputs
        except Exception as exc:  # around the step, not in it: still the step's failure
            done = _broken(ctx, call, token, exc)
    else:
        ctx.report(replace(done.event, reused=True))
    return Token(
        target=done.target,
        params={**token.params, **done.outputs},
        changed=token.changed | done.outputs.keys(),
    )


def run_step_and_end(ctx: RunContext, call: StepCall, end: EndCall, *incoming: Token) -> BranchEnd:
    """A branch of one step: the step, then the branch's end, in one task and one message."""
    held = ctx.holding()
    ended = run_branch_end(held, end, run_step(held, call, *incoming))
    held.send_held()
    return ended


def _run_task(
    ctx: RunContext, call: StepCall, token: Token, catalog: RunCatalog
) -> checkpoint.Checkpoint:
    """Every attempt the step is allowed, unless the step cache holds its outputs; a
    success is kept before it is reported, so a worker lost in between does not run it
    again."""
    node, name = call.node, call.internal_name
    task = ctx.task_for(node)
    cache = step_cache.prepare(ctx, node.cache, task, token.params, catalog, call.hidden)
    if cache is not None:
        reused = cache.reuse(task, name, _shown(token.params, call.hidden), catalog)
        if reused is not None:  # recorded and kept like any success
            records = reused.data_catalog
            event = call.event("SUCCESS", attempts=[reused.attempt], data_catalog=records)
            return _keep(ctx, call, reused.outputs, event)
    attempts: list[dict[str, Any]] = []
    # In the driving process the run's scope sets the run id for the whole run.
    environment = {} if ctx.kept.in_driver else {RUN_ID_ENV: ctx.run_id}
    if ctx.secrets:
        note_secrets(ctx.secrets)
        environment.update((n, ctx.secrets[n]) for n in task.secrets if n in ctx.secrets)
    environment.update((n, str(token.params[n].value)) for n in call.indexes if n in token.params)
    start = call.start_event(now())
    send = ctx.reporter.sender()
    with announced(send, start), task_environment(environment):
        for number in range(1, task.retries + 2):
            if number > 1 and task.retry_delay:
                time.sleep(task.retry_delay)
            result = run_attempt(task, name, token.params, catalog, now(), number, call.hidden)
            attempts.append(result.attempt)
            if result.ok:
                break
            if number <= task.retries:  # said now, for the dashboard: the end comes later
                send([call.retry_event(number + 1, result.attempt["message"], start)])
        outputs = result.outputs
        if cache is not None and result.ok:  # while the step's secrets are set: none is kept
            outputs = cache.keep(task, name, ctx.run_id, result, catalog, ctx.kept.in_driver)
    status = "SUCCESS" if result.ok else "FAIL"
    if cache is not None:
        cache.note_in_log(catalog, name)
    event = call.event(
        status,
        result.attempt["message"],
        attempts=attempts,
        data_catalog=result.data_catalog,
        mock=task is not node.step,
        started=start.start_time,  # names this run of the task, if it was announced
        **({"warnings": tuple(cache.warnings)} if cache is not None and cache.warnings else {}),
    )
    if not result.ok:
        ctx.report(event)
        return checkpoint.Checkpoint(target=node.on_failure, outputs={}, event=event)
    return _keep(ctx, call, outputs, event)


def _keep(
    ctx: RunContext, call: StepCall, outputs: dict[str, Param], event: StepEnded
) -> checkpoint.Checkpoint:
    """Keep a success's checkpoint, then report it; a success whose outcome cannot be
    kept is the step's failure."""
    name = call.internal_name
    done = checkpoint.Checkpoint(target=call.node.on_success, outputs=outputs, event=event)
    try:
        ctx.kept.keep(name, done)
    except Exception as exc:  # the step ran, but what it returned cannot be kept
        message = f"could not keep the step's outcome ({type(exc).__name__}: {exc})"
        event.attempts[-1].update(
            status="FAIL", message=message, output_parameters={}, user_defined_metrics={}
        )
        event = replace(event, status="FAIL", message=message)
        ctx.report(event)
        return checkpoint.Checkpoint(target=call.node.on_failure, outputs={}, event=event)
    ctx.report(event)
    return done


def _broken(ctx: RunContext, call: StepCall, token: Token, exc: Exception) -> checkpoint.Checkpoint:
    """The step's record when runnable_dask itself failed around it: a FAIL naming the
    error, so the run goes on along the step's failure path as for any failure."""
    message = f"runnable_dask could not run the step ({type(exc).__name__}: {exc})"
    attempt = attempt_record(now(), _shown(token.params, call.hidden), message=message)
    event = call.event("FAIL", message, attempts=[attempt])
    ctx.report(event)
    return checkpoint.Checkpoint(target=call.node.on_failure, outputs={}, event=event)


def run_parallel(
    ctx: RunContext, call: StepCall, ends: list[BranchEnd], incoming: list[Token]
) -> Token:
    """Join a Parallel's branches: merge their returns in branch order, then route."""
    token = arrived(tuple(incoming), call.entry)
    if token is None:
        return NOT_REACHED
    node = call.node
    failed = [b.key for b, end in zip(node.branches, ends, strict=True) if end.status != "SUCCESS"]
    return join_branches(ctx, call, token, ends, failed)


def join_branches(
    ctx: RunContext, call: StepCall, token: Token, ends: list[BranchEnd], failed: list[str]
) -> Token:
    """Record a composite's end and route: on success, the branches' values merge back
    in order; on failure, control goes to the step's failure path."""
    node = call.node
    message = f"branches failed: {listed(failed)}" if failed else ""
    ctx.report(call.event("FAIL" if failed else "SUCCESS", message))
    if failed:
        return Token(target=node.on_failure, params=token.params, changed=token.changed)
    params = dict(token.params)
    changed = token.changed
    for end in ends:
        params.update(end.params)
        changed = changed | end.changed
    return Token(target=node.on_success, params=params, changed=changed)


MAX_LISTED = 10
"""Names a composite's message lists; its branches' records hold every one."""


def listed(names: list[str]) -> str:
    """The first :data:`MAX_LISTED` names, and how many more there are."""
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def run_branch_end(ctx: RunContext, call: EndCall, *incoming: Token) -> BranchEnd:
    """Record the terminal that control reached; give the branch's status and values."""
    for token in incoming:
        if token.target in call.terminals:
            break
    else:
        return BRANCH_NOT_REACHED
    template, kind = call.terminals[token.target]
    if call.entry is not None:
        token = arrived((token,), call.entry) or token
    status: Literal["SUCCESS", "FAIL"] = "SUCCESS" if kind == "success" else "FAIL"
    changed = token.changed
    own = {name: token.params[name] for name in changed}
    attempt = attempt_record(now(), _shown(token.params, call.hidden))
    ended = StepEnded(  # the terminal's record, as StepCall.event makes a step's
        fill(template, call.items),
        template,
        call.items,
        template.rsplit(".", 1)[-1],
        kind,
        "SUCCESS",
        attempts=[attempt],
    )
    if call.is_root:
        ctx.report(RunEnded(ended, status, summarise(token.params)))
    else:
        name = fill(call.branch, call.items)
        ctx.report(BranchEnded(ended, name, call.branch, call.items, status, summarise(own)))
    if call.is_root:
        return BranchEnd(status=status)
    return BranchEnd(status=status, params=own, changed=changed)


def _shown(params: dict[str, Param], hidden: frozenset[str]) -> dict[str, Param]:
    """The parameters an attempt records: a map's list is recorded once, on the map."""
    return {n: p for n, p in params.items() if n not in hidden} if hidden else params
