"""``runnable-dask show RUN_ID``: one run's step tree, with what failed and where its log is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import click
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from runnable_dask import results
from runnable_dask.cli.options import store_options
from runnable_dask.cli.runlogs import read_run_log, resolve_store
from runnable_dask.results import TERMINAL_TYPES, Span, attempt_times, run_span
from runnable_dask.step_logs import log_name
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog import StepLog

BRANCHES_SHOWN = 20
STATUS_STYLE = {"SUCCESS": "green", "FAIL": "red", "PROCESSING": "yellow", "CREATED": "dim"}


@click.command()
@click.argument("run_id")
@click.option("--all", "show_all", is_flag=True, help="List every branch of large composites.")
@store_options
def show(
    run_id: str, show_all: bool, configuration_file: str | None, log_folder: str | None
) -> None:
    """Show a run's steps as a tree: status, duration, attempts, metrics, failures and their logs.

    Branches are nested under their composite step. Of a composite with more than 20
    branches, the first 20 and every failed one are listed; --all lists them all.
    """
    store = resolve_store(configuration_file, log_folder)
    run_log = read_run_log(store, run_id)
    catalog = results.catalog(run_log)
    span = run_span(run_log)
    tree = Tree(
        Text.assemble(
            ("Run ", "bold"),
            (run_log.run_id, "bold"),
            " ",
            _status(run_log.status),
            f"  started {span.started()}",
            f", took {span.duration()}" if run_log.status != "PROCESSING" else "",
            f"  tag: {run_log.tag}" if run_log.tag else "",
        )
    )
    _add_steps(tree, run_log.steps.values(), show_all)
    console = Console(highlight=False, soft_wrap=True)  # paths stay whole, to copy
    console.print(tree, soft_wrap=False)  # wrapped at the width, never cut: messages whole
    console.print(Text(f"  Run log:   {store.url(run_log.run_id)}"))
    console.print(Text(f"  Step logs: {catalog.url('logs')}/"))
    for step in run_log.failed_steps():  # after the tree, whole, so the paths can be copied
        if step.step_type == "task" and step.attempts:
            log = catalog.url(log_name(step.internal_name))
            console.print(
                Text.assemble("  ", ("log of failed", "red"), f" {step.internal_name}: {log}")
            )
    error = run_log.run_config.get("error")  # the run itself broke, not a step
    if error:
        console.print(Text.assemble("  ", ("Run error:", "red"), f" {error}"))
    report = run_log.run_config.get("performance_report")
    if report:
        console.print(Text(f"  Performance report: {report}"))


def _add_steps(parent: Tree, steps: Iterable[StepLog], show_all: bool) -> None:
    for step in steps:
        if step.step_type in TERMINAL_TYPES:
            continue
        statuses = _statuses(step)  # read once: a map's items are many
        node = parent.add(_step_label(step, statuses))
        if step.status == "FAIL" and step.message:
            node.add(Text(step.message, style="red"))
        _add_branches(node, step, statuses, show_all)


def _add_branches(
    node: Tree, step: StepLog, statuses: list[tuple[str, str]], show_all: bool
) -> None:
    """The first BRANCHES_SHOWN branches and every failed one, unless ``show_all``."""
    shown = [
        step.branches[name]
        for index, (name, status) in enumerate(statuses)
        if show_all or index < BRANCHES_SHOWN or status == "FAIL"
    ]
    for branch in shown:
        key = branch.internal_name.removeprefix(f"{step.internal_name}.")
        child = node.add(
            Text.assemble(
                (key, "bold"),
                "  ",
                _status(branch.status),
                f"  {Span.of(attempt_times(branch.steps.values())).duration()}",
            )
        )
        _add_steps(child, branch.steps.values(), show_all)
    hidden = len(statuses) - len(shown)
    if hidden:
        node.add(Text(f"... and {hidden} more (none failed); --all lists them", style="dim"))


def _step_label(step: StepLog, statuses: list[tuple[str, str]]) -> Text:
    label = Text.assemble(
        (step.name, "bold"),
        "  ",
        _status(step.status),
        f"  {Span.of(attempt_times([step])).duration()}",
    )
    if len(step.attempts) > 1:
        label.append(f"  {len(step.attempts)} attempts", style="yellow")
    cached_from = step.attempts[-1].cached_from if step.attempts else None
    if cached_from is not None:
        label.append(f"  cached from run {cached_from}", style="blue")
    if step.branches:
        counts = Counter(status for _, status in statuses)
        failed = f", {counts['FAIL']} failed" if counts["FAIL"] else ""
        count = len(step.branches)
        label.append(f"  {count} branch{'es' if count > 1 else ''}{failed}", style="dim")
    recorded = step.attempts[-1].user_defined_metrics if step.attempts else {}
    for name, value in recorded.items():
        label.append(f"  {name}={value}", style="cyan")
    return label


def _statuses(step: StepLog) -> list[tuple[str, str]]:
    """(name, status) of each branch; a map's packed branches are not unpacked for it."""
    branches = step.branches
    if isinstance(branches, PackedBranches):
        return list(branches.statuses())
    return [(name, branch.status) for name, branch in branches.items()]


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))
