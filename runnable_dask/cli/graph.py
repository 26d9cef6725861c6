"""``runnable-dask graph FILE.py[:function]``: the pipeline's shape, without running it."""

from __future__ import annotations

import shutil
import subprocess
from unittest import mock

import click

from runnable_dask.cli.diagram import build_diagram, to_dot, to_mermaid
from runnable_dask.cli.errors import UsageProblem
from runnable_dask.cli.launch import Entry, call_entry, load_pipeline
from runnable_dask.plan import build_plan
from runnable_dask.sdk import Pipeline


class _Captured(BaseException):
    """Stops main() at its first execute(); a BaseException so ``except Exception`` in
    the user's main() does not swallow it."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__()
        self.pipeline = pipeline


@click.command()
@click.argument("target", metavar="FILE.py[:function]")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the Mermaid text to this file instead of stdout.",
)
@click.option(
    "--svg",
    type=click.Path(dir_okay=False, writable=True),
    help="Also render an SVG with Graphviz dot (which must be on PATH).",
)
@click.option(
    "--dask",
    "dask_graph",
    is_flag=True,
    help="Draw the Dask task graph the pipeline lowers to (keys and layers), not its steps.",
)
def graph(target: str, output: str | None, svg: str | None, dask_graph: bool) -> None:
    """Print the pipeline's shape as a Mermaid flowchart.

    FILE.py:function calls function(), which returns the Pipeline. FILE.py calls main()
    with Pipeline.execute replaced, so main() stops at its first execute() and that
    pipeline is drawn: nothing runs, but main()'s code before execute() does.

    Composite steps are boxes around their branches, on_failure routes are dashed and
    the success and fail terminals are circles.

    With --dask: the Dask graph the scheduler receives first, a task per step keyed
    <step>-<token>, a layer per branch (--svg through dask.visualize, which needs the
    graphviz package); a Map's items join it at run time, once their list is known.
    """
    pipeline = _pipeline(Entry.parse(target))
    if dask_graph:
        from runnable_dask.dask_graph import to_delayed
        from runnable_dask.dask_graph import to_mermaid as dask_mermaid

        delayed = to_delayed(pipeline)
        if svg:
            _visualize(delayed, svg)
        text = dask_mermaid(delayed)
    else:
        diagram = build_diagram(build_plan(pipeline))
        if svg:
            _render_svg(to_dot(diagram), svg)
        text = to_mermaid(diagram)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    elif not svg:
        click.echo(text, nl=False)


def _pipeline(entry: Entry) -> Pipeline:
    if entry.function:
        return load_pipeline(entry)

    def capture(self: Pipeline, *args: object, **kwargs: object) -> None:
        raise _Captured(self)

    with mock.patch.object(Pipeline, "execute", capture):
        try:
            result = call_entry(entry)
        except _Captured as captured:
            return captured.pipeline
    if isinstance(result, Pipeline):  # built but not run
        return result
    raise UsageProblem(
        f"{entry.path.name}: main() neither called Pipeline.execute() nor returned a "
        f"Pipeline, so there is nothing to draw; name a function that returns the "
        f"Pipeline: {entry.path.name}:function"
    )


def _render_svg(dot_text: str, path: str) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise UsageProblem(
            "--svg needs Graphviz's dot on PATH (apt install graphviz, brew install "
            "graphviz); or render the Mermaid text at https://mermaid.live"
        )
    result = subprocess.run(
        [dot, "-Tsvg", "-o", path], input=dot_text, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise click.ClickException(f"dot could not render the graph: {result.stderr.strip()}")


def _visualize(delayed: object, path: str) -> None:
    try:
        import graphviz  # noqa: F401  (dask.visualize draws through it)
    except ImportError:
        raise UsageProblem(
            "--dask --svg draws through dask.visualize, which needs the graphviz package "
            "and Graphviz's dot: pip install graphviz, and apt install graphviz (or brew); "
            "without --svg the Dask graph prints as Mermaid text"
        ) from None
    delayed.visualize(filename=path)  # type: ignore[attr-defined]
