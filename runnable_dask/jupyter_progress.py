"""Live progress in Jupyter: one display, updated in place, instead of a line per step.

A run started from a notebook cell shows its step lines and, for each map and wide
Parallel, a bar (done, failed, running, of N) in a single HTML output that is redrawn as
events arrive (``IPython.display`` with a ``display_id``). The saved notebook keeps its
last state, so the record reads like the run did. It needs nothing beyond IPython, which
any Jupyter kernel has; :class:`~runnable_dask.console.RunConsole` uses it only inside a
kernel.
"""

from __future__ import annotations

import html
import sys
import time
from dataclasses import dataclass, field
from typing import Any

COLOURS = {
    "cyan": "#1f77b4",
    "green": "#2ca02c",
    "red": "#d62728",
    "yellow": "#b8860b",
    "blue": "#6a5acd",
}
REDRAW_INTERVAL = 0.25
"""Seconds between redraws at most: a 10,000-item map does not flood the kernel."""
LINES_KEPT = 200
"""Step lines shown at most (the latest); failures of a huge map summarise the rest."""


def in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (a notebook, papermill, JupyterLab)."""
    if "IPython" not in sys.modules:  # not imported: not a kernel; do not import it
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


@dataclass
class _Bar:
    name: str
    noun: str
    total: int
    done: int = 0
    failed: int = 0
    running: set[str] = field(default_factory=set)
    finished: bool = False


class JupyterProgress:
    """The run's lines and bars, drawn as one HTML output that updates in place.

    It has :class:`~runnable_dask.progress.GroupProgress`'s methods, and
    :meth:`line` for the step lines a terminal would print.
    """

    def __init__(self) -> None:
        self._entries: list[_Bar | tuple[str, str, str]] = []
        self._bars: dict[str, _Bar] = {}
        self._dropped = 0
        self._handle: Any = None
        self._last_draw = 0.0
        self._pending = False

    @property
    def active(self) -> bool:
        return any(not bar.finished for bar in self._bars.values())

    def line(self, colour: str, label: str, text: str) -> None:
        self._entries.append((colour, label.strip(), text))
        lines = [e for e in self._entries if isinstance(e, tuple)]
        if len(lines) > LINES_KEPT:
            self._entries.remove(lines[0])
            self._dropped += 1
        self._changed(urgent=colour == "red")

    def started(self, name: str, noun: str, total: int) -> None:
        if name in self._bars and not self._bars[name].finished:
            return
        bar = _Bar(name, noun, total)
        self._bars[name] = bar
        self._entries.append(bar)
        self._changed(urgent=True)

    def item_started(self, name: str, item: str) -> None:
        bar = self._bars.get(name)
        if bar is not None and not bar.finished and item not in bar.running:
            bar.running.add(item)
            self._changed()

    def item_finished(self, name: str, item: str, ok: bool) -> None:
        bar = self._bars.get(name)
        if bar is None or bar.finished:
            return
        bar.running.discard(item)
        if ok:
            bar.done += 1
        else:
            bar.failed += 1
        self._changed()

    def finished(self, name: str) -> None:
        bar = self._bars.get(name)
        if bar is not None:
            bar.finished = True
            bar.running.clear()
            self._changed(urgent=True)

    def idle(self) -> None:
        """Nothing happened for a moment: draw what the last events changed."""
        if self._pending:
            self._draw()

    def stop(self) -> None:
        """The run ended: its last state stays, as the saved notebook's output."""
        for bar in self._bars.values():
            bar.finished = True
            bar.running.clear()
        if self._pending or self._handle is not None:
            self._draw()

    def _changed(self, urgent: bool = False) -> None:
        self._pending = True
        if urgent or time.monotonic() - self._last_draw >= REDRAW_INTERVAL:
            self._draw()

    def _draw(self) -> None:
        from IPython.display import display

        shown = {"text/html": self.html(), "text/plain": self.text()}
        if self._handle is None:
            self._handle = display(shown, raw=True, display_id=True)
        else:
            self._handle.update(shown, raw=True)
        self._last_draw = time.monotonic()
        self._pending = False

    def text(self) -> str:
        """The same as plain lines, for viewers without HTML (``nbconvert --to script``)."""
        rows = [f"  ... {self._dropped} earlier lines"] if self._dropped else []
        for entry in self._entries:
            if isinstance(entry, _Bar):
                rows.append(f"  {entry.name:<16} {_counts(entry)}")
            else:
                rows.append(f"  {entry[1]:<8} {entry[2]}")
        return "\n".join(rows)

    def html(self) -> str:
        """The display as it stands: step lines in order, each bar where it started."""
        rows = []
        if self._dropped:
            rows.append(f"<div style='color:#888'>... {self._dropped} earlier lines</div>")
        for entry in self._entries:
            if isinstance(entry, _Bar):
                rows.append(_bar_html(entry))
            else:
                colour, label, text = entry
                rows.append(
                    f"<div><span style='color:{COLOURS[colour]};display:inline-block;"
                    f"width:5em'>{html.escape(label)}</span>{html.escape(text)}</div>"
                )
        return (
            "<div class='runnable-dask-progress' style='font-family:monospace;"
            f"font-size:90%;max-height:24em;overflow-y:auto'>{''.join(rows)}</div>"
        )


def _bar_html(bar: _Bar) -> str:
    total = max(bar.total, 1)
    done, failed = 100 * bar.done / total, 100 * bar.failed / total
    counts = html.escape(_counts(bar)).replace(
        f"{bar.failed} failed", f"<span style='color:{COLOURS['red']}'>{bar.failed} failed</span>"
    )
    state = "" if bar.finished else "running "
    return (
        f"<div style='margin:2px 0'><span style='color:{COLOURS['cyan']}'>{state}</span>"
        f"{html.escape(bar.name)} "
        "<span style='display:inline-block;width:16em;height:0.8em;background:#e5e5e5;"
        "vertical-align:middle;margin:0 0.5em'>"
        f"<span style='display:inline-block;height:100%;width:{done:.2f}%;"
        f"background:{COLOURS['green']}'></span>"
        f"<span style='display:inline-block;height:100%;width:{failed:.2f}%;"
        f"background:{COLOURS['red']}'></span></span>"
        f"<span class='counts'>{counts}</span></div>"
    )


def _counts(bar: _Bar) -> str:
    counts = f"{bar.done} done"
    if bar.failed:
        counts += f", {bar.failed} failed"
    if not bar.finished:
        counts += f", {len(bar.running)} running"
    return f"{counts}, of {bar.total} {bar.noun}"
