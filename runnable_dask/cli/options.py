"""Options several commands share: a configuration file, and where the run logs are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
EXISTING_FILE = click.Path(exists=True, dir_okay=False)


def configuration_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--config", "-c", "configuration_file", type=EXISTING_FILE, default=None, help=help
    )


def store_options(function: F) -> F:
    """``--config`` and ``--log-folder``, read by :func:`runlogs.resolve_store`."""
    function = click.option(
        "--log-folder",
        type=click.Path(file_okay=False),
        default=None,
        help="Run log folder or fsspec URL; default: the configuration's run-log store.",
    )(function)
    return configuration_option("Configuration file whose run-log-store holds the runs.")(function)
