"""``runnable-dask report RUN_ID``: the run as one HTML file that opens offline."""

from __future__ import annotations

import click

from runnable_dask.cli.options import store_options
from runnable_dask.cli.runlogs import read_run_log, resolve_store
from runnable_dask.run_report import REPORT_NAME, write_report


@click.command()
@click.argument("run_id")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help=f"Where to write the report; default: {REPORT_NAME} in the run's catalog folder.",
)
@store_options
def report(
    run_id: str, output: str | None, configuration_file: str | None, log_folder: str | None
) -> None:
    """Write a run's report: a timeline of every attempt, the steps, metrics (a table and a
    chart), parameters and the catalog's files, in one HTML file that opens offline.

    Made from the run log alone: any executor's run, long after its cluster is gone.
    """
    run_log = read_run_log(resolve_store(configuration_file, log_folder), run_id)
    click.echo(write_report(run_log, output))
