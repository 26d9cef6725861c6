"""Map, Conditional and Loop inside the task graph: their starts, their joins, and the
small values the driver reads to lower what comes next.

A Map or Loop step is lowered in parts. Its *probe* task takes control like any step and
checks what it needs (the list, for a map); a tiny task reads from the probe's token
only what the driver must know (the items as text; whether the loop goes on), so the
parameters themselves never travel to the driver. The driver then lowers the
iterations and the *join*, which records the step and routes on. A Conditional's
branches are all in the graph from the start; only the chosen one receives control.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runnable_dask.compact import Compact
from runnable_dask.runtime.cache_keys import listed_digest
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.node import MAX_LISTED, StepCall, join_branches, listed
from runnable_dask.runtime.tokens import (
    NOT_REACHED,
    BranchEnd,
    Param,
    ParamKind,
    Token,
    arrived,
)
from runnable_dask.timestamps import now


def run_probe(ctx: RunContext, call: StepCall, *incoming: Token) -> Token:
    """Take control for a Map or Loop: check its input, then let the driver lower it."""
    token = arrived(incoming, call.entry)
    if token is None:
        return NOT_REACHED
    ctx.report(call.start_event(now()))
    problem = _map_problem(call, token.params) if call.node.kind == "map" else ""
    if problem:
        ctx.report(call.event("FAIL", problem))
        return Token(target=call.node.on_failure, params=token.params, changed=token.changed)
    return Token(target=call.node.internal_name, params=token.params, changed=token.changed)


@dataclass(frozen=True, slots=True)
class MapItems(Compact):
    """A map's items as text, in one object. Dask sends a tuple of strings to the driver
    string by string (a tuple of 100,000: 5 s and 30 MB more in the driver, 100 MB
    while it arrived); an object goes as one pickle (0.04 s)."""

    values: tuple[str, ...]


def map_items(call: StepCall, probe: Token) -> MapItems | None:
    """What the driver needs to lower a map: each item's text (it names the branch), or
    None when control did not enter the map."""
    if probe.target != call.node.internal_name:
        return None
    return MapItems(tuple(str(item) for item in probe.params[call.node.step.iterate_on].value))


def run_map_join(
    ctx: RunContext,
    call: StepCall,
    ends: list[BranchEnd],
    probe: Token,
    returned: tuple[tuple[str, ParamKind], ...] = (),
) -> Token:
    """Record the map and route; on success each returned name is reduced over the items.

    A map over an empty list has no iterations to say what they set: ``returned`` (the
    names its branch returns, and their kinds) are reduced from no values instead, so
    the steps after it find them (``[]`` with the default reducer).
    """
    if probe.target != call.node.internal_name:
        return probe  # not reached, or refused at its start (already recorded)
    step = call.node.step
    items = [str(item) for item in probe.params[step.iterate_on].value]
    failed = [item for item, end in zip(items, ends, strict=True) if end.status != "SUCCESS"]
    if failed:
        message = f"{len(failed)} of {len(items)} iterations failed: {listed(failed)}"
        ctx.report(call.event("FAIL", message))
        return Token(target=call.node.on_failure, params=probe.params, changed=probe.changed)
    try:
        reduced = _reduce(step.reducer, ends) if ends else _reduce_nothing(step.reducer, returned)
    except Exception as exc:  # the user's reducer: recorded as the step's failure
        empty = (
            ""
            if ends
            else f"; {step.iterate_on!r} was empty, so the reducer was called with no values: "
            "make it accept none (e.g. 'lambda *x: max(x, default=None)')"
        )
        ctx.report(
            call.event(
                "FAIL", f"reducer {step.reducer!r} raised {type(exc).__name__}: {exc}{empty}"
            )
        )
        return Token(target=call.node.on_failure, params=probe.params, changed=probe.changed)
    ctx.report(call.event("SUCCESS"))
    return Token(
        target=call.node.on_success,
        params={**probe.params, **reduced},
        changed=probe.changed | reduced.keys(),
    )


def run_batched_map_join(
    ctx: RunContext,
    call: StepCall,
    batches: list[list[BranchEnd]],
    probe: Token,
    returned: tuple[tuple[str, ParamKind], ...] = (),
) -> Token:
    """:func:`run_map_join` for a map whose items ran in batches (each a list of ends)."""
    ends = [end for batch in batches for end in batch]
    return run_map_join(ctx, call, ends, probe, returned)


def run_conditional(ctx: RunContext, call: StepCall, *incoming: Token) -> Token:
    """Take control for a Conditional: send it to the branch named by the parameter."""
    token = arrived(incoming, call.entry)
    if token is None:
        return NOT_REACHED
    ctx.report(call.start_event(now()))
    step = call.node.step
    keys = ", ".join(repr(k) for k in step.branches)
    param = token.params.get(step.parameter)
    if param is None:
        problem = (
            f"parameter {step.parameter!r} is not set when the step starts; set it in the "
            f"parameters file or return it from an earlier step (branches: {keys})"
        )
    elif str(param.value) not in step.branches:
        problem = (
            f"value {str(param.value)!r} of parameter {step.parameter!r} matches no branch; "
            f"branches: {keys}"
        )
    else:
        target = f"{call.node.internal_name}.{param.value}"
        return Token(target=target, params=token.params, changed=token.changed)
    ctx.report(call.event("FAIL", problem))
    return Token(target=call.node.on_failure, params=token.params, changed=token.changed)


def run_conditional_join(
    ctx: RunContext, call: StepCall, ends: list[BranchEnd], chosen: Token
) -> Token:
    """Record the Conditional and merge back the branch that ran."""
    ran = [(b.key, end) for b, end in zip(call.node.branches, ends, strict=True) if end.status]
    if not ran:
        return chosen  # not reached, or no branch matched (already recorded)
    failed = [key for key, end in ran if end.status != "SUCCESS"]
    return join_branches(ctx, call, chosen, [end for _, end in ran], failed)


def loop_next(ctx: RunContext, call: StepCall, index: int, end: BranchEnd, entered: Token) -> Token:
    """After iteration ``index``: carry its values on, then go round again or end."""
    node, step = call.node, call.node.step
    if end.status != "SUCCESS":
        ctx.report(call.event("FAIL", f"iteration {index} failed"))
        return Token(target=node.on_failure, params=entered.params, changed=entered.changed)
    params = {**entered.params, **end.params}
    changed = entered.changed | end.changed
    stop = params.get(step.break_on)
    if (stop is not None and stop.value is True) or index + 1 >= step.max_iterations:
        ctx.report(call.event("SUCCESS"))
        return Token(target=node.on_success, params=params, changed=changed)
    return Token(target=node.internal_name, params=params, changed=changed)


def loop_goes_on(call: StepCall, token: Token) -> bool:
    """What the driver needs to lower a loop: whether another iteration runs."""
    return token.target == call.node.internal_name


def passthrough(token: Token) -> Token:
    """A composite's final key when its last part already routed control."""
    return token


def _map_problem(call: StepCall, params: dict[str, Param]) -> str:
    step = call.node.step
    listed = params.get(step.iterate_on)
    if listed is None:
        return (
            f"iterate_on {step.iterate_on!r} is not a parameter when the map starts; "
            "set it in the parameters file or return it from an earlier step "
            f"(parameters here: {', '.join(sorted(params)) or 'none'})"
        )
    if not isinstance(listed.value, (list, tuple)):
        return (
            f"iterate_on {step.iterate_on!r} is a {type(listed.value).__name__} "
            f"({listed.value!r:.80}), expected a list to map over"
        )
    counts = Counter(str(item) for item in listed.value)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        return (
            f"iterate_on {step.iterate_on!r} holds items that read the same as text "
            f"({', '.join(repeated[:MAX_LISTED])}); each item's text names its branch, so "
            "make them distinct"
        )
    return ""


def _reduce(reducer: str | None, ends: list[BranchEnd]) -> dict[str, Param]:
    """Each name set in the iterations, reduced over them in list order."""
    function = _reducer(reducer)
    names = list(dict.fromkeys(name for end in ends for name in end.changed))
    reduced = {}
    for name in names:
        params = [end.params[name] for end in ends if name in end.params]
        kinds = {p.kind for p in params}
        kind: ParamKind = (
            "object" if "object" in kinds else "metric" if kinds == {"metric"} else "json"
        )
        value = function(*(p.value for p in params))
        reduced[name] = Param(kind, value, listed_digest(params) if reducer is None else "")
    return reduced


def _reduce_nothing(
    reducer: str | None, returned: tuple[tuple[str, ParamKind], ...]
) -> dict[str, Param]:
    """What an empty map sets: the reducer called with no values, for every name."""
    function = _reducer(reducer)
    return {name: Param(kind=kind, value=function()) for name, kind in returned}


def _reducer(reducer: str | None) -> Callable[..., Any]:
    if reducer is None:
        return lambda *values: list(values)
    if reducer.startswith("lambda"):
        return eval(reducer, {})  # the user's own expression, checked when the Map was built
    module, _, name = reducer.rpartition(".")
    return getattr(importlib.import_module(module), name)
