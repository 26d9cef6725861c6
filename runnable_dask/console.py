"""What a person sees while a run goes on: steps starting and ending, then a summary."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from runnable_dask.jupyter_progress import JupyterProgress, in_jupyter
from runnable_dask.progress import GroupProgress
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog import BranchLog, RunLog, StepLog

_SILENT_TYPES = ("success", "fail")
_ANSI = {
    "cyan": "\x1b[36m",
    "green": "\x1b[32m",
    "red": "\x1b[31m",
    "yellow": "\x1b[33m",
    "blue": "\x1b[34m",
    "reset": "\x1b[0m",
}


class RunConsole:
    """Prints progress lines and the final summary of one run."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._colour = self.console.is_terminal and not self.console.no_color
        self.groups: GroupProgress | JupyterProgress | None = None
        """Bars for maps and wide Parallels in a terminal, or one live display in Jupyter;
        None: plain lines (CI logs)."""
        if console is None and in_jupyter():
            self.groups = JupyterProgress()
        elif self.console.is_terminal:
            self.groups = GroupProgress(self.console)

    def run_started(
        self, run_id: str, where: str, dashboard_link: str | None, run_log_path: str
    ) -> None:
        with self.console:  # one output in Jupyter, not one per line
            self.console.print(f"[bold]Run {escape(run_id)}[/] on {escape(where)}")
            if dashboard_link:
                link = f"[link={dashboard_link}]{dashboard_link}[/link]"
                self.console.print(f"  Dashboard: {link}")
            self.console.print(f"  Run log:   {escape(run_log_path)}")

    def resumed(self, run_id: str) -> None:
        self.console.print(
            f"  Resuming {escape(run_id)}: steps that finished before are not run again"
        )

    def step_started(self, internal_name: str, step_type: str) -> None:
        if step_type not in _SILENT_TYPES:
            self._line("cyan", "started ", internal_name)

    def step_finished(
        self,
        internal_name: str,
        step_type: str,
        status: str,
        seconds: float,
        message: str,
        cached: int = 0,
    ) -> None:
        """A step ended; ``cached`` counts the steps inside it (a map's iterations, whose
        lines are not printed) whose outputs came from the step cache."""
        if step_type in _SILENT_TYPES:
            return
        if self.groups is not None:
            self.groups.finished(internal_name)
        if status == "SUCCESS":
            note = f", {cached} step{'s' if cached > 1 else ''} from the cache" if cached else ""
            self._line("green", "done    ", f"{internal_name} ({seconds:.2f} s{note})")
        else:
            detail = f": {message}" if message else ""
            self._line("red", "FAILED  ", f"{internal_name} ({seconds:.2f} s){detail}")

    def note(self, text: str) -> None:
        """A line that is neither a step's start nor its end: its first word is its label
        (``waiting ...``, ``note ...``)."""
        label, _, rest = text.strip().partition(" ")
        self._line("yellow", f"{label:<8}", rest.strip())

    def step_cached(self, internal_name: str, run_id: str) -> None:
        """A step whose outputs came from the step cache: it did not run."""
        self._line("blue", "cached  ", f"{internal_name} (from run {run_id})")

    def step_warning(self, internal_name: str, message: str) -> None:
        self._line("yellow", "warning ", f"{internal_name}: {message}")

    def group_started(self, internal_name: str, step_type: str, count: int) -> None:
        """A map's items are known, or a wide Parallel began: a bar in a terminal."""
        noun = "iteration" if step_type == "map" else "branch"
        plural = "" if count == 1 else "es" if noun == "branch" else "s"
        if self.groups is None:
            if step_type == "map":  # a Parallel's start line is printed as it starts
                self.step_started(f"{internal_name} ({count} {noun}{plural})", step_type)
            return
        self.groups.started(internal_name, f"{noun}{plural}", count)

    def item_started(self, group: str, item: str) -> None:
        if self.groups is not None:
            self.groups.item_started(group, item)

    def item_finished(self, group: str, item: str, ok: bool) -> None:
        if self.groups is not None:
            self.groups.item_finished(group, item, ok)

    def idle(self) -> None:
        """Nothing arrived for a moment: a live display draws what it has not drawn yet."""
        if isinstance(self.groups, JupyterProgress):
            self.groups.idle()

    def _line(self, colour: str, label: str, text: str) -> None:
        """One progress line, written directly: rich's full rendering costs ~1 ms a line,
        which a run of thousands of steps would feel. Above the bars while they show."""
        if isinstance(self.groups, JupyterProgress):
            self.groups.line(colour, label, text)
            return
        if self._colour:
            label = f"{_ANSI[colour]}{label}{_ANSI['reset']}"
        if self.groups is not None and self.groups.active:
            self.console.print(Text.from_ansi(f"  {label} {text}"))
            return
        self.console.file.write(f"  {label} {text}\n")

    def run_finished(
        self,
        run_log: RunLog,
        seconds: float,
        run_log_path: str,
        catalog: str,
        dashboard_link: str | None,
        step_log: Callable[[str], str | None],
        log_tail: Callable[[str], list[str]] = lambda internal_name: [],
    ) -> None:
        """The summary; each failed step with its message, where its full log is, and the
        log's last lines (a step on a remote worker printed them there)."""
        if self.groups is not None:
            self.groups.stop()
        with self.console:  # one output in Jupyter, not one per line
            self._summary(run_log, seconds, run_log_path, catalog, dashboard_link)
            self._failures(run_log, step_log, log_tail)

    def _summary(
        self,
        run_log: RunLog,
        seconds: float,
        run_log_path: str,
        catalog: str,
        dashboard_link: str | None,
    ) -> None:
        colour = "green" if run_log.status == "SUCCESS" else "red"
        self.console.print(
            f"[bold]Run {escape(run_log.run_id)}[/] [bold {colour}]{run_log.status}[/] "
            f"in {seconds:.2f} s"
        )
        self.console.print(f"  Run log:   {escape(run_log_path)}")
        self.console.print(f"  Catalog:   {escape(catalog)}")
        if dashboard_link:
            self.console.print(f"  Dashboard: {dashboard_link}")
        report = run_log.run_config.get("performance_report")
        if report:
            self.console.print(f"  Report:    {escape(report)}")
        self._cached_summary(run_log)
        run_report = run_log.run_config.get("run_report")
        if run_report:
            self.console.print(f"  Run report: {escape(run_report)}")
        if run_log.status == "FAIL":
            self.console.print(f"  Resume:    runnable-dask retry {escape(run_log.run_id)}")

    def _failures(
        self,
        run_log: RunLog,
        step_log: Callable[[str], str | None],
        log_tail: Callable[[str], list[str]],
    ) -> None:
        # In a run that succeeded, a failed step was handled by an on_failure pipeline.
        label = "[red]failed[/]" if run_log.status == "FAIL" else "[yellow]handled[/]"
        for step in run_log.failed_steps():
            name, message = escape(step.internal_name), escape(step.message)
            self.console.print(f"  {label} {name}: {message}")
            log = step_log(step.internal_name) if step.attempts else None
            if log:  # a step stopped mid-run, or that printed nothing, has no log
                self.console.print(f"         log: {escape(log)}")
                for line in log_tail(step.internal_name):
                    self.console.print(f"         | {escape(line)}")

    def _cached_summary(self, run_log: RunLog) -> None:
        """How many tasks came from the step cache, and from which runs."""
        if not _any_cached(run_log):  # a map's packed items are read only if one was
            return
        tasks, sources = _cache_counts(run_log.steps.values())
        if not sources:
            return
        runs = sorted(set(sources))
        shown = ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        self.console.print(
            f"  Cached:    {len(sources)} of {tasks} tasks came from the cache "
            f"(run{'s' if len(runs) > 1 else ''} {escape(shown)})"
        )


def _cache_counts(steps: Iterable[StepLog]) -> tuple[int, list[str]]:
    """The tasks that ran or came from the cache, and the run each cached one came from;
    a map's items held as JSON counted in their JSON."""
    tasks, sources = 0, []
    for step in steps:
        if step.step_type == "task" and step.attempts:
            tasks += 1
            if step.attempts[-1].cached_from:
                sources.append(step.attempts[-1].cached_from)
        branches = step.branches
        if isinstance(branches, PackedBranches):
            held_tasks, held_sources = branches.cache_counts()
            tasks += held_tasks
            sources.extend(held_sources)
            live: Iterable[BranchLog] = branches.live_values()
        else:
            live = branches.values()
        for branch in live:
            inner_tasks, inner_sources = _cache_counts(branch.steps.values())
            tasks += inner_tasks
            sources.extend(inner_sources)
    return tasks, sources


def _any_cached(run_log: RunLog) -> bool:
    """Whether any step came from the step cache, found without reading each packed map
    item back into objects (seconds for a map of 10,000 items)."""
    pending: list[StepLog] = list(run_log.steps.values())
    while pending:
        step = pending.pop()
        if step.attempts and step.attempts[-1].cached_from:
            return True
        branches = step.branches
        if isinstance(branches, PackedBranches):
            if branches.any_cached():  # a hint: the walk that follows is exact
                return True
            held = branches.live_values()
        else:
            held = iter(branches.values())
        pending.extend(s for branch in held for s in branch.steps.values())
    return False
