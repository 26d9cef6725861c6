"""``runnable-dask cluster start | status | stop``: a local Dask cluster that outlives runs.

Thin: the processes and the state file are :mod:`runnable_dask.executors.standing`'s job.
"""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.table import Table

from runnable_dask.executors import standing
from runnable_dask.sdk.resources import check_resources, describe


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


@click.group()
def cluster() -> None:
    """A local Dask cluster that stays up between runs.

    While one runs, every run whose configuration names no cluster of its own uses it
    (no cluster to start per run; the dashboard stays open between runs).
    """


@cluster.command()
@click.option(
    "--workers",
    "-n",
    "n_workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes.  [default: cores, at most 4]",
)
@click.option(
    "--threads",
    "-t",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads per worker.",
)
@click.option(
    "--memory-limit",
    default="auto",
    show_default=True,
    help="Memory per worker (4GiB, 0.5 for half of the machine's, 0 for none); auto shares "
    "the machine's memory between the workers.",
)
@click.option(
    "--dashboard-address",
    default=standing.DEFAULT_DASHBOARD,
    show_default=True,
    help="Where the dashboard listens; another free port is taken if this one is busy.",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="The scheduler's port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--resources",
    default="",
    metavar="NAME=AMOUNT,...",
    help='What each worker process offers to steps that ask for it (resources={"GPU": 1}), '
    'as dask worker takes it: "GPU=1" or "GPU=1,MEMORY=8e9".  [default: none]',
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="Seconds to wait for the scheduler and every worker.",
)
def start(
    n_workers: int | None,
    threads: int,
    memory_limit: str,
    dashboard_address: str,
    port: int,
    resources: str,
    timeout: float,
) -> None:
    """Start the cluster in the background; return once every worker has joined."""
    sizes = standing.Sizes(
        resources=parse_resources(resources),
        n_workers=n_workers or min(os.cpu_count() or 1, 4),
        threads_per_worker=threads,
        memory_limit=memory_limit,
        dashboard_address=dashboard_address,
        port=port,
        timeout=timeout,
    )
    note = standing.find().note  # a stale file is cleaned (and said) before starting
    console = _console()
    if note:
        console.print(f"Note: {note}")
    state = standing.start(sizes)
    console.print(
        f"Started a runnable-dask cluster: {state.n_workers} worker processes x "
        f"{state.threads_per_worker} threads"
    )
    _describe(console, state)
    console.print("Runs use it until: runnable-dask cluster stop")


@cluster.command()
def status() -> None:
    """Show the cluster: its address, dashboard, and each worker with what runs on it."""
    console = _console()
    found = standing.find()
    if found.state is None:
        console.print(f"Note: {found.note}" if found.note else "No runnable-dask cluster runs.")
        console.print("Start one with: runnable-dask cluster start")
        return
    state = found.state
    rows = standing.workers(state)
    console.print(f"runnable-dask cluster: {len(rows)} workers")
    _describe(console, state)
    table = Table(title_justify="left")
    offering = any(row.resources for row in rows)  # the column only where it says something
    columns = ("worker", "address", "threads", "memory", "processing", "in memory")
    for column in (*columns, "resources") if offering else columns:
        table.add_column(column, justify="right" if column in columns[2:] else "left")
    for row in rows:
        groups = ", ".join(f"{name} x{count}" for name, count in sorted(row.groups.items()))
        cells = [
            row.name,
            row.address,
            str(row.threads),
            f"{_size(row.memory)} / {_size(row.memory_limit)}",
            f"{row.processing}" + (f" ({groups})" if groups else ""),
            str(row.in_memory),
        ]
        table.add_row(*cells, *([describe(row.resources) or "-"] if offering else []))
    console.print(table)


@cluster.command()
def stop() -> None:
    """Shut the cluster down; return once none of its processes is left."""
    console = _console()
    found = standing.find()
    if found.note:
        console.print(f"Note: {found.note}")
    if found.state is None:
        if not found.note:
            console.print("No runnable-dask cluster runs.")
        return
    state = standing.stop()
    if state is not None:
        console.print(f"Stopped the runnable-dask cluster at {state.address}")


def _describe(console: Console, state: standing.ClusterState) -> None:
    console.print(f"  Scheduler: {state.address}")
    if state.dashboard:
        console.print(f"  Dashboard: {state.dashboard}")
    if state.resources:
        console.print(f"  Resources: {describe(state.resources)} on each worker")
    console.print(f"  State:     {standing.state_path()}")
    console.print(
        f"  Processes: scheduler pid {state.scheduler.pid}, workers pid {state.workers.pid}"
    )


def parse_resources(text: str) -> dict[str, float]:
    """``"GPU=1,MEMORY=8e9"`` (commas or spaces, as ``dask worker`` reads it) as a
    mapping, or a usage error naming what is wrong."""
    resources: dict[str, float] = {}
    for pair in text.replace(",", " ").split():
        name, equals, amount = pair.partition("=")
        try:
            if not equals:
                raise ValueError
            resources[name] = float(amount)
        except ValueError:
            raise click.BadParameter(
                f'{pair!r} is not NAME=AMOUNT; write e.g. --resources "GPU=1,MEMORY=8e9"',
                param_hint="--resources",
            ) from None
    try:
        return check_resources(resources)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--resources") from None


def _size(n: float) -> str:
    if not n:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
