"""The benchmark's one table: cells formatted from measurements, targets marked met or missed."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Row:
    """One line of the table; every cell is text, empty where it does not apply."""

    workload: str
    executor: str
    ours: str
    bare: str = ""
    ratio: str = ""
    runnable: str = ""
    target: str = ""


def seconds(value: float) -> str:
    return f"{value:.3f} s"


def ratio(ours: float, bare: float) -> str:
    return f"{ours / bare:.2f}x"


def target(description: str, met: bool) -> str:
    """A target with its verdict, e.g. ``<= 1.2x bare: met``."""
    return f"{description}: {'[green]met[/]' if met else '[red]missed[/]'}"


def within_ratio(ours: float, bare: float, limit: float = 1.2) -> str:
    return target(f"<= {limit}x bare", ours <= limit * bare)


def render(rows: list[Row], title: str, notes: list[str]) -> None:
    table = Table(title=title, caption="\n".join(notes), caption_justify="left")
    for column in ("workload", "executor", "runnable_dask", "bare Dask", "ratio"):
        table.add_column(column, justify="left" if column in ("workload", "executor") else "right")
    table.add_column("runnable 0.50.0", justify="right")
    table.add_column("target")
    for row in rows:
        table.add_row(
            row.workload, row.executor, row.ours, row.bare, row.ratio, row.runnable, row.target
        )
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough that rows stay on one line
        console = Console(width=220)
    console.print(table)
