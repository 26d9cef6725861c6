"""The sweep's report: a chart of every configuration's score and a Markdown summary.

Drawn with matplotlib's object API (no pyplot), so steps running in threads of one
worker never share a global figure.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from pydantic import BaseModel

CHART = "sweep-scores.png"
SUMMARY = "summary.md"
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


class FamilyResult(BaseModel):
    """One family's sweep: each configuration's cross-validated accuracy, and the best."""

    family: str
    cv_accuracy: dict[str, float]
    best: str
    test_accuracy: float | None = None  # of the best configuration, on the held-out set

    @property
    def label(self) -> str:
        return f"{self.family}: {self.best}"


def write_report(
    results: list[FamilyResult], winner: FamilyResult, folder: Path, cv_folds: int
) -> list[Path]:
    """Write the chart and the summary into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    chart, summary = folder / CHART, folder / SUMMARY
    draw_scores(results, winner, cv_folds).savefig(chart, dpi=120, bbox_inches="tight")
    summary.write_text(summarise(results, winner, cv_folds), encoding="utf-8")
    return [chart, summary]


def draw_scores(results: list[FamilyResult], winner: FamilyResult, cv_folds: int) -> Figure:
    """One horizontal bar per configuration, grouped and coloured by family; each
    family's best is marked, and the winner on the held-out set named."""
    rows = [(r, config, score) for r in results for config, score in r.cv_accuracy.items()]
    scores = [score for _, _, score in rows]
    low = max(0.0, min(scores) - 0.02)
    span = max(scores) - low
    figure = Figure(figsize=(9, 1.6 + 0.38 * len(rows)))
    axes = figure.add_subplot()
    colour = {r.family: COLOURS[i % len(COLOURS)] for i, r in enumerate(results)}
    positions = list(range(len(rows)))[::-1]  # first configuration at the top
    for y, (result, config, score) in zip(positions, rows, strict=True):
        best = config == result.best
        axes.barh(y, score - low, left=low, color=colour[result.family], alpha=1 if best else 0.45)
        note = f"{score:.3f}"
        if best:
            note += "  best of family"
            if result is winner:
                note += f", winner (held-out {winner.test_accuracy:.3f})"
        axes.text(
            score + span * 0.01,
            y,
            note,
            va="center",
            fontsize=8,
            fontweight="bold" if best else "normal",
        )
    axes.set_yticks(positions, [config for _, config, _ in rows], fontsize=8)
    for tick, (result, config, _) in zip(axes.get_yticklabels(), rows, strict=True):
        tick.set_fontweight("bold" if config == result.best else "normal")
    axes.set_xlim(low, max(scores) + span * 0.9)  # room for the notes
    axes.set_xticks([tick for tick in axes.get_xticks() if low <= tick <= 1])
    axes.set_xlabel(f"cross-validated accuracy (mean of {cv_folds} folds)")
    axes.set_ylabel("configuration")
    handles = [Patch(color=colour[r.family], label=r.family) for r in results]
    axes.legend(handles=handles, loc="lower right", fontsize=8, title="model family")
    axes.set_title(f"Model sweep: {len(rows)} configurations, best of each family in bold")
    axes.grid(axis="x", alpha=0.3)
    return figure


def summarise(results: list[FamilyResult], winner: FamilyResult, cv_folds: int) -> str:
    """A Markdown page: the winner, each family's best, and the chart."""
    count = sum(len(r.cv_accuracy) for r in results)
    lines = [
        "# Model sweep",
        "",
        f"{count} configurations in {len(results)} model families, scored by {cv_folds}-fold "
        "cross-validated accuracy on the training set; each family's best was then scored "
        "on the held-out set.",
        "",
        f"Winner: **{winner.label}**, held-out accuracy {winner.test_accuracy:.4f}.",
        "",
        "| family | best configuration | cross-validated accuracy | held-out accuracy |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.family} | {r.best} | {r.cv_accuracy[r.best]:.4f} | {r.test_accuracy:.4f} |"
        for r in results
    ]
    lines += ["", f"![Every configuration's cross-validated accuracy]({CHART})", ""]
    return "\n".join(lines)
