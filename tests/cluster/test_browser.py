"""In a real browser: headless Chromium from the system's packages, driven by Playwright.

The Pipeline page during a run of ``nesting.py`` on a scheduler started with the page's
preload (no JavaScript error, the run log's states shown), and a run report opened from
disk with no request leaving ``file://``. Skipped, with the reason, where Chromium or
Playwright is missing (``.ci/run`` installs Chromium when it runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import Map, Parallel, Pipeline, PythonTask, ShellTask, Stub
from runnable_dask.run_report import write_report

from .conftest import ROOT, DaskProcesses, start_workers, stop, wait_for_workers
from .test_dashboard_page import fetch, start_scheduler_with_page

pytestmark = pytest.mark.cluster

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # else it calls Google's hosts at start
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium (its own profile folder) with one page; the page's JavaScript
    errors and requests are recorded on it as ``errors`` and ``requests``."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1600},
        )
        try:
            page = context.new_page()
            page.errors = []  # type: ignore[attr-defined]
            page.requests = []  # type: ignore[attr-defined]
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on(
                "console",
                lambda message: message.type == "error" and page.errors.append(message.text),
            )
            page.on("request", lambda request: page.requests.append(request.url))
            yield page
        finally:
            context.close()


@pytest.fixture(scope="module")
def page_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaskProcesses, str]]:
    cluster, dashboard = start_scheduler_with_page(tmp_path_factory.mktemp("browser"))
    try:
        start_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        yield cluster, dashboard
    finally:
        stop(cluster.processes)


PAGE_TEXT = """() => {
    const parts = [document.body.innerText];
    const visit = (root) => root.querySelectorAll("*").forEach((element) => {
        if (element.shadowRoot) {
            parts.push(element.shadowRoot.textContent);
            visit(element.shadowRoot);
        }
    });
    visit(document);
    return parts.join("\\n");
}"""


def page_text(page: Any) -> str:
    """The page's text, inside BokehJS's shadow roots too (innerText stops at them)."""
    return page.evaluate(PAGE_TEXT)


def walk(steps: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for step in steps.values():
        yield step
        for branch in step.get("branches", {}).values():
            yield from walk(branch["steps"])


@pytest.mark.timeout(240)
def test_the_pipeline_page_during_nesting_shows_the_run_logs_states(
    browser: Any, page_cluster: tuple[DaskProcesses, str], tmp_path: Path
) -> None:
    cluster, dashboard = page_cluster
    browser.goto(f"{dashboard}/individual-pipeline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {
        "RUNNABLE_CONFIGURATION_FILE": str(cluster.config(tmp_path)),
        "RUNNABLE_RUN_ID": "nesting-in-a-browser",
    }
    process = subprocess.Popen(
        [sys.executable, "examples/06-parallel/nesting.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = set()
    while process.poll() is None:  # the page, as it updates during the run
        seen.add(page_text(browser))
        time.sleep(0.3)
    assert process.returncode == 0, process.communicate()[0]
    log = json.loads((tmp_path / "run_logs" / "nesting-in-a-browser.json").read_text())
    tasks = [s for s in walk(log["steps"]) if s["step_type"] in ("task", "stub")]
    assert len(tasks) == 16 and all(s["status"] == "SUCCESS" for s in tasks)
    final = "nesting-in-a-browser succeeded"
    deadline = time.monotonic() + 30
    while final not in page_text(browser) and time.monotonic() < deadline:
        time.sleep(0.3)
    text = page_text(browser)
    assert final in text and f"steps: {len(tasks)} succeeded" in text
    for step in walk(log["steps"]):
        if step["step_type"] not in ("success", "fail"):
            assert browser.locator(f'span[title="{step["internal_name"]}"]').count() == 1
    rows = browser.locator(".slick-row").all_inner_texts()  # the table as drawn
    assert len(rows) == 25  # the tree: 3 Parallels, their 6 branches, 16 steps
    assert all("succeeded" in row and "running" not in row for row in rows), rows
    assert any("nesting-in-a-browser" in page for page in seen)  # seen while it ran
    assert browser.errors == []
    assert fetch(f"{dashboard}/runnable-dask/runs/nesting-in-a-browser")[0] == 200


def greet() -> None:
    print("hello")


def double(x: int) -> int:
    return 2 * x


@pytest.mark.timeout(120)
def test_the_report_opens_offline_and_shows_every_step(
    browser: Any, workdir: Path, local_config: Path
) -> None:
    (workdir / "params.yaml").write_text("xs: [1, 2, 3]\n", encoding="utf-8")
    doubled = Pipeline(steps=[PythonTask(name="double", function=double, returns=["y"])])
    both = {
        "python": Pipeline(steps=[PythonTask(name="greet", function=greet)]),
        "shell": Pipeline(steps=[ShellTask(name="echo", command="echo hi")]),
    }
    run_log = Pipeline(
        steps=[
            Parallel(name="fan", branches=both),
            Map(name="doubles", branch=doubled, iterate_on="xs", iterate_as="x"),
            Stub(name="done"),
        ]
    ).execute(configuration_file=str(local_config), parameters_file="params.yaml")
    report = Path(write_report(run_log, workdir / "report.html"))
    browser.goto(report.as_uri())
    browser.wait_for_selector(".slick-row")  # the tables are drawn by BokehJS
    for step in run_log.walk():
        if step.step_type not in ("success", "fail"):
            assert browser.locator(f'span[title="{step.internal_name}"]').count() == 1
    assert browser.errors == []
    assert browser.requests and all(url.startswith("file://") for url in browser.requests)
