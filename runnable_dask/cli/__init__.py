"""The ``runnable-dask`` command: run pipeline files, list and inspect runs, draw pipelines,
keep a local cluster up between runs.

Exit status: 0 on success, 1 when a run fails (or another runnable_dask error is
raised), 2 on usage errors. Errors are one ``Error: ...`` message, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from runnable_dask.exceptions import ExecutionFailedError, RunnableDaskError

__all__ = ["cli", "main"]

# Each command's module is imported when the command runs (or --help lists them): the
# commands between them import Dask, the run-log stores and the drawing code, which
# `runnable-dask cluster status` has no use for.
_COMMANDS = {
    "cache": "runnable_dask.cli.cache:cache",
    "cluster": "runnable_dask.cli.cluster:cluster",
    "execute": "runnable_dask.cli.execute:execute",
    "graph": "runnable_dask.cli.graph:graph",
    "report": "runnable_dask.cli.report:report",
    "retry": "runnable_dask.cli.execute:retry",
    "runs": "runnable_dask.cli.runs:runs",
    "show": "runnable_dask.cli.show:show",
}


class _Group(click.Group):
    """Turns runnable_dask's errors into exit statuses and one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, name = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExecutionFailedError:  # the run's summary is printed already
            ctx.exit(1)
        except RunnableDaskError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runnable_dask")
def cli() -> None:
    """Run runnable pipelines on Dask, and look at what they did."""


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="runnable-dask")
