"""``runnable-dask execute`` and ``retry``: start a run from a pipeline file, or again."""

from __future__ import annotations

import os

import click

from runnable_dask.cli.errors import UsageProblem
from runnable_dask.cli.launch import Entry, launch
from runnable_dask.cli.options import EXISTING_FILE, configuration_option, store_options
from runnable_dask.cli.runlogs import read_run_log, resolve_store


@click.command()
@click.argument("target", metavar="FILE.py[:function]")
@configuration_option("Configuration file (executor, run log store, catalog).")
@click.option(
    "--parameters",
    "-p",
    "parameters_file",
    type=EXISTING_FILE,
    default=None,
    help="YAML file of initial parameters.",
)
@click.option("--run-id", default="", help="The run's id; default: a generated one.")
@click.option("--tag", default="", help="A label stored in the run log (FILE.py:function only).")
def execute(
    target: str,
    configuration_file: str | None,
    parameters_file: str | None,
    run_id: str,
    tag: str,
) -> None:
    """Run a pipeline file.

    FILE.py is imported as a module (its `if __name__ == "__main__"` block does not run)
    and its main() is called; main() builds the pipeline and calls execute(), which
    receives the options through RUNNABLE_* environment variables. FILE.py:function
    calls function(), which must return the Pipeline; it is then run with the options.
    The file's folder and the working folder are put first on sys.path.

    Exit status: 0 if the run succeeds, 1 if it fails, 2 if FILE cannot be loaded.
    """
    launch(Entry.parse(target), configuration_file or "", parameters_file or "", run_id, tag)


@click.command()
@click.argument("run_id")
@store_options
def retry(run_id: str, configuration_file: str | None, log_folder: str | None) -> None:
    """Run a failed run again under its id, as it was launched.

    Reads how the run was started from its run log (file, function, working folder,
    configuration and parameters files), goes to that folder and launches it as
    `execute` would, with RUNNABLE_RUN_ID set so the driver resumes the failed run.

    Exit status: as the run's; 2 if the run is unknown, succeeded or has no launch record.
    """
    run_log = read_run_log(resolve_store(configuration_file, log_folder), run_id)
    if run_log.status == "SUCCESS":
        raise UsageProblem(f"run {run_id!r} succeeded already; there is nothing to retry")
    record = run_log.run_config.get("launch")
    if not isinstance(record, dict) or not record.get("entry"):
        raise UsageProblem(
            f"run {run_id!r} has no launch record (run_config['launch']), so how it was "
            "started is unknown; start it again with runnable-dask execute FILE.py"
        )
    cwd = str(record.get("cwd") or os.getcwd())
    if not os.path.isdir(cwd):
        raise UsageProblem(f"run {run_id!r} was launched in {cwd}, which no longer exists")
    os.chdir(cwd)
    entry = Entry.parse(str(record["entry"]))
    click.echo(f"Retrying run {run_id} ({entry}) in {cwd}")
    launch(
        entry,
        configuration_file=str(record.get("configuration_file") or ""),
        parameters_file=str(record.get("parameters_file") or ""),
        run_id=run_id,
    )
