"""``runnable-dask runs`` and ``show``: what a user reads about past runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from runnable_dask.stores.runlog import RunLog

Invoke = Callable[..., Result]


def attempt(start: str, end: str = "", status: str = "SUCCESS", message: str = "") -> dict:
    return {"start_time": start, "end_time": end, "status": status, "message": message}


def task(internal_name: str, *attempts: dict, status: str = "SUCCESS", message: str = "") -> dict:
    name = internal_name.rsplit(".", 1)[-1]
    return {
        "name": name,
        "internal_name": internal_name,
        "status": status,
        "message": message,
        "attempts": list(attempts),
    }


def big_map(branches: int, failed: set[int]) -> dict[str, Any]:
    """A map step with ``branches`` iterations; those in ``failed`` failed."""
    start, end = "2026-11-28T10:00:00+00:00", "2026-11-28T10:00:07+00:00"
    logs = {}
    for i in range(branches):
        status = "FAIL" if i in failed else "SUCCESS"
        message = f"ValueError: item {i} is bad" if i in failed else ""
        inner = task(f"sweep.{i}.train", attempt(start, end, status, message), status=status)
        inner["message"] = message
        logs[f"sweep.{i}"] = {
            "internal_name": f"sweep.{i}",
            "status": status,
            "steps": {f"sweep.{i}.train": inner},
        }
    status = "FAIL" if failed else "SUCCESS"
    return {"name": "sweep", "internal_name": "sweep", "status": status, "branches": logs}


# --- runs -------------------------------------------------------------------------------


def test_runs_lists_each_run_newest_first_with_status_and_tag(
    invoke: Invoke, flow: Path, local_config: Path
) -> None:
    assert (
        invoke("execute", "flow.py:passing", "-c", "local.yaml", "--run-id", "older").exit_code == 0
    )
    time.sleep(0.05)
    args = ("execute", "flow.py:failing", "-c", "local.yaml", "--run-id", "newer", "--tag", "v2")
    assert invoke(*args).exit_code == 1
    result = invoke("runs", "-c", "local.yaml")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "older" in line or "newer" in line]
    assert len(rows) == 2
    assert "newer" in rows[0] and "FAIL" in rows[0] and "v2" in rows[0]
    assert "older" in rows[1] and "SUCCESS" in rows[1]
    assert " s " in rows[1]  # a duration such as "0.01 s"

    limited = invoke("runs", "--limit", "1")
    assert "newer" in limited.stdout and "older" not in limited.stdout


def test_runs_shows_a_run_still_going_as_processing(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    steps = {"load": task("load", attempt("2026-11-28T10:00:00+00:00"), status="PROCESSING")}
    write_run_log("going", steps, status="PROCESSING")
    result = invoke("runs")
    row = next(line for line in result.stdout.splitlines() if "going" in line)
    assert "PROCESSING" in row
    assert "2026-11-28" in row or "2026-11-29" in row or "2026-11-27" in row  # local time


def test_runs_in_an_empty_store_says_so(invoke: Invoke, workdir: Path) -> None:
    result = invoke("runs", "--log-folder", "nowhere")
    assert result.exit_code == 0
    assert "No runs in nowhere" in result.stdout


def test_runs_and_show_read_a_map_of_ten_thousand_iterations(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    write_run_log("huge", {"sweep": big_map(10_000, failed={9_999})}, status="FAIL")
    listed = invoke("runs")
    shown = invoke("show", "huge")
    assert "huge" in listed.stdout and "7.00 s" in listed.stdout
    assert "ValueError: item 9999 is bad" in shown.stdout
    assert "... and 9979 more (none failed)" in shown.stdout


# --- show -------------------------------------------------------------------------------


def test_show_nests_branches_and_prints_failures_with_their_log(
    invoke: Invoke, flow: Path, local_config: Path, workdir: Path
) -> None:
    invoke("execute", "flow.py:failing", "-c", "local.yaml", "--run-id", "bad")
    result = invoke("show", "bad")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Run bad FAIL" in out
    for name in ("first", "fan", "quiet", "fails"):
        assert name in out
    assert "2 branches, 1 failed" in out
    assert "ValueError: boom: bad input" in out
    log = workdir / ".catalog" / "bad" / "logs" / "fan.b.fails.execution.log"
    assert f"log of failed fan.b.fails: {log}" in out
    assert "boom: bad input" in log.read_text(encoding="utf-8")  # the path shown is real
    # Branches sit under their composite: the failing step is indented deeper than fan.
    lines = out.splitlines()
    indent = {n: next(ln.index(n) for ln in lines if f"{n}  " in ln) for n in ("fan", "fails")}
    assert indent["fails"] > indent["fan"]


def test_show_counts_attempts_and_prints_the_performance_report(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    steps = {
        "download": task(
            "download",
            attempt("2026-11-28T10:00:00+00:00", "2026-11-28T10:00:01+00:00", "FAIL", "timeout"),
            attempt("2026-11-28T10:00:02+00:00", "2026-11-28T10:00:03+00:00", "FAIL", "timeout"),
            attempt("2026-11-28T10:00:04+00:00", "2026-11-28T10:00:05+00:00"),
        )
    }
    run_config = {"performance_report": "reports/r.html", "error": "KilledWorker: w1 died"}
    write_run_log("flaky", steps, status="SUCCESS", run_config=run_config)
    result = invoke("show", "flaky")
    assert "download  SUCCESS  5.00 s  3 attempts" in result.stdout
    assert "Performance report: reports/r.html" in result.stdout
    assert "Run error: KilledWorker: w1 died" in result.stdout


def test_show_prints_each_steps_metrics(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    start, end = "2026-11-28T10:00:00+00:00", "2026-11-28T10:00:02+00:00"
    fit = task("grid.C=0.1.fit", attempt(start, end))
    fit["attempts"][0]["user_defined_metrics"] = {"cv_accuracy": 0.979, "cv_std": 0.01}
    grid = {
        "name": "grid",
        "internal_name": "grid",
        "status": "SUCCESS",
        "branches": {
            "grid.C=0.1": {
                "internal_name": "grid.C=0.1",
                "status": "SUCCESS",
                "steps": {"grid.C=0.1.fit": fit},
            }
        },
    }
    write_run_log("sweep", {"grid": grid}, status="SUCCESS")
    result = invoke("show", "sweep")
    assert "C=0.1  SUCCESS  2.00 s" in result.stdout
    assert "fit  SUCCESS  2.00 s  cv_accuracy=0.979  cv_std=0.01" in result.stdout


def test_show_wraps_a_long_failure_message_instead_of_cutting_it(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    """Piped into a file or a CI log (80 columns), every word of the message is kept."""
    message = "RuntimeError: " + " ".join(f"word{i}" for i in range(40))
    start, end = "2026-11-28T10:00:00+00:00", "2026-11-28T10:00:01+00:00"
    failed = attempt(start, end, "FAIL", message)
    steps = {"train": task("train", failed, status="FAIL", message=message)}
    write_run_log("long", steps, status="FAIL")
    out = invoke("show", "long").stdout
    assert "took 1.00 s" in out
    assert " ".join(out.split()).count(message) == 1


def test_show_lists_twenty_branches_and_every_failed_one_unless_all(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    write_run_log("map", {"sweep": big_map(1_000, failed={500, 900})}, status="FAIL")
    out = invoke("show", "map").stdout
    assert "1000 branches, 2 failed" in out
    shown = set(re.findall(r"── (\S+)  (?:SUCCESS|FAIL)", out))
    assert {"0", "19", "500", "900"} <= shown
    assert "20" not in shown
    assert "ValueError: item 500 is bad" in out and "ValueError: item 900 is bad" in out
    assert "... and 978 more (none failed); --all lists them" in out

    everything = invoke("show", "map", "--all").stdout
    assert "more (none failed)" not in everything
    assert everything.count("── train  ") == 1_000


def test_show_refuses_an_unknown_run_and_names_recent_ones(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    for run_id in ("a1", "a2"):
        write_run_log(run_id, {})
    result = invoke("show", "a3")
    assert result.exit_code == 2
    assert "no run 'a3' in .run_log_store; recent runs: " in result.stderr
    assert "a1" in result.stderr and "a2" in result.stderr
