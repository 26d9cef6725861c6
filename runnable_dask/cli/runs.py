"""``runnable-dask runs``: recent runs as a table of id, status, start, duration and tag."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from runnable_dask.cli.options import store_options
from runnable_dask.cli.runlogs import Span, recent_run_logs, resolve_log_folder

STATUS_STYLE = {"SUCCESS": "green", "FAIL": "red", "PROCESSING": "yellow"}


@click.command()
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(min=1))
@store_options
def runs(limit: int, configuration_file: str | None, log_folder: str | None) -> None:
    """List recent runs, newest first.

    The LIMIT most recently written run logs, ordered by start time (the earliest attempt).
    A run still going shows PROCESSING and no duration.
    """
    folder = resolve_log_folder(configuration_file, log_folder)
    rows = sorted(
        (_summary(path) for path in recent_run_logs(folder, limit)),
        key=lambda row: row[1].start.timestamp() if row[1].start else float("inf"),
        reverse=True,
    )
    # Piped or captured output gets room for full run ids instead of rich's 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if not rows:
        console.print(f"No runs in {folder}")
        return
    table = Table(title=f"Runs in {folder}", title_justify="left")
    for column in ("run id", "status", "started", "duration", "tag"):
        table.add_column(column, no_wrap=column != "tag")
    for data, span in rows:
        status = str(data.get("status", "UNREADABLE"))
        table.add_row(
            str(data.get("run_id", "")),
            f"[{STATUS_STYLE.get(status, 'magenta')}]{status}[/]",
            span.started(),
            span.duration() if status != "PROCESSING" else "-",
            str(data.get("tag", "")),
        )
    console.print(table)


def _summary(path: Path) -> tuple[dict[str, Any], Span]:
    """A run log's top-level fields and time span; plain JSON, as logs may be large."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data, Span.of(_times(data.get("steps", {})))
    except (OSError, ValueError, AttributeError, TypeError):
        return {"run_id": path.stem, "status": "UNREADABLE"}, Span()


def _times(steps: dict[str, Any]) -> Iterator[tuple[str, str]]:
    pending = list(steps.values())
    while pending:
        step = pending.pop()
        for attempt in step.get("attempts", ()):
            yield attempt.get("start_time", ""), attempt.get("end_time", "")
        for branch in step.get("branches", {}).values():
            pending.extend(branch.get("steps", {}).values())
