"""Live progress bars for a terminal: one per map, and per wide Parallel, while it runs.

A map of 10,000 items would print 10,000 lines; in a terminal it shows one bar instead,
with its items done, failed and running out of all of them (failures still print their
own line, above the bars). Output that is not a terminal (CI logs, a file) keeps plain
lines: :class:`~runnable_dask.console.RunConsole` uses this only when it writes to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich.progress is imported by the first bar: most runs draw none
    from rich.console import Console
    from rich.progress import Progress, TaskID

WIDE_PARALLEL = 10
"""A Parallel of this many branches or more shows as a bar in a terminal."""


@dataclass
class _Group:
    task: TaskID
    total: int
    done: int = 0
    failed: int = 0
    running: set[str] = field(default_factory=set)


class GroupProgress:
    """The bars of the maps and wide Parallels running now, drawn while any is."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._groups: dict[str, _Group] = {}

    @property
    def active(self) -> bool:
        return self._progress is not None

    def started(self, name: str, noun: str, total: int) -> None:
        if name in self._groups:
            return
        if self._progress is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("  [cyan]running[/] {task.description}"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,  # the step's own 'done' line replaces its bar
                refresh_per_second=4,
                # sys.stdout stays as it is: in-process tasks capture their output there
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
        task = self._progress.add_task(name, total=total, counts=f"0 of {total} {noun}")
        self._groups[name] = _Group(task, total)

    def item_started(self, name: str, item: str) -> None:
        group = self._groups.get(name)
        if group is not None and item not in group.running:
            group.running.add(item)
            self._draw(name, group)

    def item_finished(self, name: str, item: str, ok: bool) -> None:
        group = self._groups.get(name)
        if group is None:
            return
        group.running.discard(item)
        if ok:
            group.done += 1
        else:
            group.failed += 1
        self._draw(name, group)
        if not ok and self._progress is not None:
            self._progress.refresh()  # a failure shows at once, not at the next refresh

    def finished(self, name: str) -> None:
        group = self._groups.pop(name, None)
        if group is None or self._progress is None:
            return
        self._progress.remove_task(group.task)
        if not self._groups:
            self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._groups.clear()

    def _draw(self, name: str, group: _Group) -> None:
        assert self._progress is not None
        failed = f", [red]{group.failed} failed[/]" if group.failed else ""
        counts = f"{group.done} done{failed}, {len(group.running)} running, of {group.total}"
        self._progress.update(group.task, completed=group.done + group.failed, counts=counts)
