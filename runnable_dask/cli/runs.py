"""``runnable-dask runs``: recent runs as a table of id, status, start, duration and tag."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from runnable_dask import results
from runnable_dask.cli.options import store_options
from runnable_dask.cli.runlogs import resolve_store

STATUS_STYLE = {"SUCCESS": "green", "FAIL": "red", "PROCESSING": "yellow"}


@click.command()
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(min=1))
@store_options
def runs(limit: int, configuration_file: str | None, log_folder: str | None) -> None:
    """List recent runs, newest first.

    The LIMIT most recently written run logs, ordered by start time (the earliest attempt).
    A run still going shows PROCESSING and no duration.
    """
    store = resolve_store(configuration_file, log_folder)
    rows = results.runs(store, limit)
    # Piped or captured output gets room for full run ids instead of rich's 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if not rows:
        console.print(f"No runs in {store.location}")
        return
    table = Table(title=f"Runs in {store.location}", title_justify="left")
    for column in ("run id", "status", "started", "duration", "tag"):
        table.add_column(column, no_wrap=column != "tag")
    for row in rows:
        status, span = row["status"], results.Span(row["start"], row["end"])
        table.add_row(
            row["run_id"],
            f"[{STATUS_STYLE.get(status, 'magenta')}]{status}[/]",
            span.started(),
            span.duration() if status != "PROCESSING" else "-",
            row["tag"],
        )
    console.print(table)
