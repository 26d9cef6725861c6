"""The ``runnable-dask`` command: run pipeline files, list and inspect runs, draw pipelines,
keep a local cluster up between runs.

Exit status: 0 on success, 1 when a run fails (or another runnable_dask error is
raised), 2 on usage errors. Errors are one ``Error: ...`` message, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from runnable_dask.cli.cache import cache
from runnable_dask.cli.cluster import cluster
from runnable_dask.cli.execute import execute, retry
from runnable_dask.cli.graph import graph
from runnable_dask.cli.report import report
from runnable_dask.cli.runs import runs
from runnable_dask.cli.show import show
from runnable_dask.exceptions import ExecutionFailedError, RunnableDaskError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns runnable_dask's errors into exit statuses and one-line messages."""

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


for _command in (execute, retry, runs, show, graph, report, cluster, cache):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="runnable-dask")
