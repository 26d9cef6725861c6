"""``runnable-dask cache list`` and ``cache clear``, and ``show`` on a cached step."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result

from runnable_dask import Pipeline, PythonTask, pickled

Invoke = Callable[..., Result]


def train(rate: float):
    return {"rate": rate, "weights": [rate] * 100}


def report(rate: float) -> str:
    return f"rate {rate}"


def pipeline() -> Pipeline:
    return Pipeline(
        steps=[
            PythonTask(name="train", function=train, returns=[pickled("model")], cache=True),
            PythonTask(name="report", function=report, returns=["text"], cache=True),
        ]
    )


@pytest.fixture
def cached_runs(local_config: Path, workdir: Path) -> Path:
    """Two runs of different rates: four entries in the default cache location."""
    for run_id, rate in (("slow", 0.1), ("fast", 0.5)):
        params = workdir / f"{run_id}.yaml"
        params.write_text(f"rate: {rate}\n", encoding="utf-8")
        pipeline().execute(
            configuration_file=str(local_config), run_id=run_id, parameters_file=str(params)
        )
    return workdir / ".catalog" / ".cache"


def entry_files(cache: Path) -> dict[str, dict]:
    """Every entry in the packs: a line each, ``<key> <entry as JSON>``."""
    return {
        line[:64]: json.loads(line[65:])
        for pack in (cache / "packs").iterdir()
        for line in pack.read_text(encoding="utf-8").splitlines()
    }


def rewrite_entry(cache: Path, entry: dict) -> None:
    """Replace the line of ``entry``'s key in its pack."""
    for pack in (cache / "packs").iterdir():
        lines = pack.read_text(encoding="utf-8").splitlines(keepends=True)
        changed = [
            f"{entry['key']} {json.dumps(entry)}\n" if line[:64] == entry["key"] else line
            for line in lines
        ]
        pack.write_text("".join(changed), encoding="utf-8")


def test_cache_list_shows_every_entry(cached_runs: Path, invoke: Invoke) -> None:
    result = invoke("cache", "list")

    assert result.exit_code == 0, result.output
    assert f"Step cache in {cached_runs}" in result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    assert len(lines) == 4
    for key, entry in entry_files(cached_runs).items():
        [line] = [line for line in lines if key[:12] in line]
        assert entry["step"] in line and entry["run_id"] in line
    assert "4 entries" in result.output


def test_cache_list_lists_the_newest_and_counts_the_rest(cached_runs: Path, invoke: Invoke) -> None:
    """A map of many cached items is as many entries: the newest are listed, the others
    counted by step name; --all lists them all."""
    result = invoke("cache", "list", "--limit", "3")

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    assert len(lines) == 3
    assert sum("fast" in line for line in lines) == 2  # newest first: the later run's two
    assert "4 entries, " in result.output
    assert "the newest 3 listed (--all lists every one); by step name: " in result.output
    assert "report 2" in result.output and "train 2" in result.output
    every = invoke("cache", "list", "--limit", "3", "--all")
    assert len([line for line in every.output.splitlines() if "│" in line]) == 4
    assert "4 entries" in every.output and "listed" not in every.output


def test_cache_clear_by_step_keeps_the_others(cached_runs: Path, invoke: Invoke) -> None:
    result = invoke("cache", "clear", "--step", "train")

    assert result.exit_code == 0, result.output
    assert "Removed 2 entries" in result.output
    remaining = entry_files(cached_runs)
    assert sorted(e["step"] for e in remaining.values()) == ["report", "report"]
    # The pickled models' blobs went with their entries; nothing else is left unnamed.
    named = {e["log"] for e in remaining.values() if e.get("log")}
    assert {p.name for p in (cached_runs / "blobs").iterdir()} == named


def test_cache_clear_older_than(cached_runs: Path, invoke: Invoke) -> None:
    entries = entry_files(cached_runs)
    old_key = next(k for k, e in entries.items() if e["run_id"] == "slow" and e["step"] == "train")
    entry = entries[old_key]
    entry["created"] = (datetime.now(timezone.utc) - timedelta(days=8)).isoformat()
    rewrite_entry(cached_runs, entry)

    kept = invoke("cache", "clear", "--older-than", "1w")
    assert kept.exit_code == 0, kept.output
    assert "Removed 1 entry" in kept.output
    assert old_key not in entry_files(cached_runs)
    assert len(entry_files(cached_runs)) == 3

    refused = invoke("cache", "clear", "--older-than", "soon")
    assert refused.exit_code == 2
    assert "'soon' is not a duration" in refused.output


def test_cache_clear_everything(cached_runs: Path, invoke: Invoke) -> None:
    result = invoke("cache", "clear")
    assert "Removed 4 entries" in result.output
    assert not list((cached_runs / "packs").iterdir())
    assert not list((cached_runs / "blobs").iterdir())
    assert "No cache entries" in invoke("cache", "list").output


def test_cache_list_of_a_configured_location(workdir: Path, invoke: Invoke) -> None:
    config = workdir / "config.yaml"
    config.write_text(f"cache: {{location: {workdir / 'elsewhere'}}}\n", encoding="utf-8")
    result = invoke("cache", "list", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert f"No cache entries in {workdir / 'elsewhere'}" in result.output


def test_show_names_the_run_a_cached_step_came_from(
    cached_runs: Path, local_config: Path, workdir: Path, invoke: Invoke
) -> None:
    pipeline().execute(
        configuration_file=str(local_config),
        run_id="again",
        parameters_file=str(workdir / "fast.yaml"),
    )
    result = invoke("show", "again")
    assert result.exit_code == 0, result.output
    assert "train  SUCCESS" in result.output
    assert result.output.count("cached from run fast") == 2
