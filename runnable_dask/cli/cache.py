"""``runnable-dask cache list`` and ``runnable-dask cache clear``: the step cache's entries."""

from __future__ import annotations

import fnmatch
import re
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runnable_dask.cli.options import configuration_option
from runnable_dask.config import load_configuration
from runnable_dask.driver import cache_location
from runnable_dask.results import format_seconds
from runnable_dask.stores.cache_store import CacheStore, EntrySummary

F = TypeVar("F", bound=Callable[..., Any])
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _location_options(function: F) -> F:
    function = click.option(
        "--location",
        default=None,
        help="The cache's folder or fsspec URL; default: the configuration's cache location.",
    )(function)
    function = click.option(
        "--step",
        "step",
        default=None,
        help="Only entries of this step: its name or internal name (wildcards allowed).",
    )(function)
    return configuration_option("Configuration file whose cache (or catalog) is meant.")(function)


@click.group()
def cache() -> None:
    """List or clear the step cache (steps with cache=True)."""


@cache.command("list")
@click.option(
    "--limit",
    "-n",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="List the newest N entries.",
)
@click.option("--all", "list_all", is_flag=True, help="List every entry.")
@_location_options
def list_entries(
    limit: int,
    list_all: bool,
    configuration_file: str | None,
    location: str | None,
    step: str | None,
) -> None:
    """List cached step runs, newest first: step, key, the run that produced it, size, age.

    The newest 50 are listed, and how many entries each step name has: a map of
    100,000 cached items is 100,000 entries (printing them all took 30 s).
    """
    store = _store(configuration_file, location)
    entries = _matching(store.entries(), step)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if not entries:
        console.print(Text(f"No cache entries in {store.location}"), soft_wrap=True)
        return
    console.print(Text(f"Step cache in {store.location}"), soft_wrap=True)  # whole, to copy
    table = Table()
    for column in ("step", "key", "produced by run", "size", "age"):
        table.add_column(column, no_wrap=column != "step")
    now = datetime.now(timezone.utc)
    shown = entries if list_all else entries[:limit]
    for entry in shown:
        age = format_seconds((now - entry.created).total_seconds()) if entry.created else "-"
        table.add_row(entry.step, entry.key[:12], entry.run_id, _size(entry.size), age)
    console.print(table)
    total = sum(e.size for e in entries)
    if len(shown) == len(entries):
        console.print(f"{len(entries)} entries, {_size(total)}")
        return
    names = Counter(e.name for e in entries)
    by_name = ", ".join(f"{name} {count}" for name, count in names.most_common(5))
    more = f" and {len(names) - 5} more names" if len(names) > 5 else ""
    console.print(
        Text(
            f"{len(entries)} entries, {_size(total)}; the newest {len(shown)} listed "
            f"(--all lists every one); by step name: {by_name}{more}"
        ),
        soft_wrap=True,
    )


@cache.command("clear")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Only entries older than this: 30m, 12h, 7d, 2w.",
)
@_location_options
def clear(
    older_than: str | None, configuration_file: str | None, location: str | None, step: str | None
) -> None:
    """Remove cache entries (all, or those --older-than and/or of --step) and the stored
    values and files no remaining entry needs. The next run of those steps runs them."""
    store = _store(configuration_file, location)
    entries = _matching(store.entries(), step)
    if older_than is not None:
        limit = datetime.now(timezone.utc) - _duration(older_than)
        entries = [e for e in entries if e.created is None or e.created < limit]
    blobs = store.remove([e.key for e in entries])
    click.echo(
        f"Removed {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
        f"({_size(sum(e.size for e in entries))}; {blobs} stored files) from {store.location}"
    )


def _store(configuration_file: str | None, location: str | None) -> CacheStore:
    return CacheStore(location or cache_location(load_configuration(configuration_file or "")))


def _matching(entries: list[EntrySummary], step: str | None) -> list[EntrySummary]:
    if step is None:
        return entries
    return [
        e for e in entries if fnmatch.fnmatchcase(e.name, step) or fnmatch.fnmatchcase(e.step, step)
    ]


def _duration(text: str) -> timedelta:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if found is None:
        raise click.BadParameter(
            f"{text!r} is not a duration; write a number and a unit: 30m, 12h, 7d, 2w",
            param_hint="--older-than",
        )
    return timedelta(seconds=float(found[1]) * _UNITS[found[2]])


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"
