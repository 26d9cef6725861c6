"""The run's catalog: files put after a task and got before one, through fsspec."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import Catalog, ExecutionFailedError, Pipeline, PythonTask, ShellTask
from runnable_dask.stores.catalog import CatalogError, RunCatalog


@pytest.fixture
def catalog(workdir: Path) -> RunCatalog:
    return RunCatalog(location=str(workdir / ".catalog"), run_id="r1")


def test_put_copies_into_the_runs_folder_and_records_a_hash(
    workdir: Path, catalog: RunCatalog
) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "a.csv").write_text("1,2\n")
    (workdir / "data" / "b.csv").write_text("3,4\n")
    (workdir / "data" / "skip.txt").write_text("no")
    records = catalog.put(["data/*.csv"])
    assert (workdir / ".catalog" / "r1" / "data" / "a.csv").read_text() == "1,2\n"
    assert (workdir / ".catalog" / "r1" / "data" / "b.csv").read_text() == "3,4\n"
    assert not (workdir / ".catalog" / "r1" / "data" / "skip.txt").exists()
    assert [(r["name"], r["stage"], r["catalog_relative_path"]) for r in records] == [
        ("data/a.csv", "put", "r1/data/a.csv"),
        ("data/b.csv", "put", "r1/data/b.csv"),
    ]
    assert records[0]["data_hash"] == hashlib.sha256(b"1,2\n").hexdigest()


def test_put_of_a_folder_copies_every_file_in_it(workdir: Path, catalog: RunCatalog) -> None:
    (workdir / "out" / "deep").mkdir(parents=True)
    (workdir / "out" / "top.txt").write_text("t")
    (workdir / "out" / "deep" / "low.txt").write_text("l")
    records = catalog.put(["out"])
    assert sorted(r["name"] for r in records) == ["out/deep/low.txt", "out/top.txt"]
    assert (workdir / ".catalog" / "r1" / "out" / "deep" / "low.txt").read_text() == "l"


def test_get_copies_back_into_the_working_folder(workdir: Path, catalog: RunCatalog) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "a.csv").write_text("1,2\n")
    catalog.put(["data/a.csv"])
    (workdir / "data" / "a.csv").unlink()
    records = catalog.get(["data/*.csv"])
    assert (workdir / "data" / "a.csv").read_text() == "1,2\n"
    assert [(r["name"], r["stage"]) for r in records] == [("data/a.csv", "get")]


def test_store_copy_false_records_without_copying(workdir: Path, catalog: RunCatalog) -> None:
    (workdir / "big.bin").write_bytes(b"\0" * 10)
    records = catalog.put(["big.bin"], store_copy=False)
    assert [r["name"] for r in records] == ["big.bin"]
    assert records[0]["data_hash"] == hashlib.sha256(b"\0" * 10).hexdigest()
    assert not (workdir / ".catalog" / "r1" / "big.bin").exists()


def test_get_that_matches_nothing_says_so(catalog: RunCatalog) -> None:
    with pytest.raises(
        CatalogError, match=r"catalog get 'model\.pkl' matched nothing in .*\.catalog/r1"
    ):
        catalog.get(["model.pkl"])


def test_put_that_matches_nothing_says_so(catalog: RunCatalog) -> None:
    with pytest.raises(CatalogError, match=r"catalog put 'nothing\*\.csv' matched no file in"):
        catalog.put(["nothing*.csv"])


def test_put_after_a_failure_passes_over_what_is_missing(catalog: RunCatalog) -> None:
    assert catalog.put(["nothing*.csv"], require_match=False) == []


def test_an_fsspec_url_works_as_the_location(workdir: Path) -> None:
    catalog = RunCatalog(location=f"memory://{uuid.uuid4().hex}", run_id="r1")
    (workdir / "a.txt").write_text("remote")
    catalog.put(["a.txt"])
    (workdir / "a.txt").unlink()
    catalog.get(["a.txt"])
    assert (workdir / "a.txt").read_text() == "remote"
    assert catalog.write_text("logs/x.log", "line\n").endswith("/r1/logs/x.log")


def test_runs_keep_their_files_apart(workdir: Path) -> None:
    (workdir / "a.txt").write_text("first")
    RunCatalog(str(workdir / ".catalog"), "run1").put(["a.txt"])
    with pytest.raises(CatalogError, match="matched nothing"):
        RunCatalog(str(workdir / ".catalog"), "run2").get(["a.txt"])


def test_files_move_between_steps_through_the_catalog(
    run: Callable[..., Any], workdir: Path
) -> None:
    def write() -> None:
        Path("result.txt").write_text("made by write")

    def remove() -> None:
        Path("result.txt").unlink()

    def read() -> str:
        return Path("result.txt").read_text()

    pipeline = Pipeline(
        steps=[
            PythonTask(name="write", function=write, catalog=Catalog(put=["result.txt"])),
            PythonTask(name="remove", function=remove),
            PythonTask(
                name="read", function=read, catalog=Catalog(get=["result.txt"]), returns=["text"]
            ),
        ]
    )
    run_log = run(pipeline)
    assert run_log.parameters["text"].value == "made by write"
    put = run_log.steps["write"].data_catalog
    got = run_log.steps["read"].data_catalog
    assert [(r.name, r.stage) for r in put] == [("result.txt", "put")]
    assert [(r.name, r.stage) for r in got] == [("result.txt", "get")]
    assert put[0].data_hash == got[0].data_hash
    assert (workdir / ".catalog" / "test-run" / "result.txt").read_text() == "made by write"


def test_a_failing_task_still_puts_what_it_wrote(run: Callable[..., Any], workdir: Path) -> None:
    def write_then_fail() -> None:
        Path("partial.txt").write_text("half")
        raise RuntimeError("crashed halfway")

    task = PythonTask(name="work", function=write_then_fail, catalog=Catalog(put=["partial.txt"]))
    with pytest.raises(ExecutionFailedError, match="RuntimeError: crashed halfway"):
        run(Pipeline(steps=[task]))
    assert (workdir / ".catalog" / "test-run" / "partial.txt").read_text() == "half"


def test_a_put_that_matches_nothing_fails_the_step(
    run: Callable[..., Any], stored_run_log: Callable[..., Any]
) -> None:
    def forgets_to_write() -> None:
        return None

    task = PythonTask(name="train", function=forgets_to_write, catalog=Catalog(put=["model.pkl"]))
    with pytest.raises(
        ExecutionFailedError, match=r"train: CatalogError: catalog put 'model\.pkl' matched no"
    ):
        run(Pipeline(steps=[task, PythonTask(name="after", function=forgets_to_write)]))
    assert stored_run_log().steps["train"].status == "FAIL"
    assert "after" not in stored_run_log().steps


def test_a_get_that_matches_nothing_fails_the_step(
    run: Callable[..., Any], stored_run_log: Callable[..., Any]
) -> None:
    def never() -> None:
        raise AssertionError("must not run")

    task = PythonTask(name="needs", function=never, catalog=Catalog(get=["model.pkl"]))
    with pytest.raises(
        ExecutionFailedError, match=r"needs: CatalogError: catalog get 'model\.pkl'"
    ):
        run(Pipeline(steps=[task]))
    assert stored_run_log().steps["needs"].status == "FAIL"


# --- copies stay inside the working folder and the run's catalog (issue 17, point 1) ---


def test_a_put_of_a_symlink_to_a_file_outside_is_refused(
    run: Callable[..., Any], workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    """A link the step leaves in its folder would copy a file from anywhere into the run."""
    secret = workdir.parent / f"{workdir.name}-secret.txt"
    secret.write_text("not for the catalog")
    task = ShellTask(
        name="leak", command=f"ln -s {secret} link.txt", catalog=Catalog(put=["*.txt"])
    )
    with pytest.raises(
        ExecutionFailedError,
        match=r"leak: CatalogError: catalog put '\*\.txt' refused: 'link\.txt' resolves to "
        r".*-secret\.txt, outside the working folder",
    ):
        run(Pipeline(steps=[task]))
    assert stored_run_log().steps["leak"].status == "FAIL"
    assert not list((workdir / ".catalog" / "test-run").glob("*.txt"))


def test_a_get_through_a_symlinked_folder_is_refused(
    run: Callable[..., Any], workdir: Path
) -> None:
    """A folder link in the working folder would make a get write elsewhere."""
    elsewhere = workdir.parent / f"{workdir.name}-elsewhere"
    elsewhere.mkdir()
    (workdir / "data").mkdir()
    (workdir / "data" / "victim.txt").write_text("from the catalog")
    put = ShellTask(name="put", command="true", catalog=Catalog(put=["data/victim.txt"]))
    swap = ShellTask(name="swap", command=f"rm -r data && ln -s {elsewhere} data")
    get = ShellTask(name="get", command="true", catalog=Catalog(get=["data/*.txt"]))
    with pytest.raises(
        ExecutionFailedError,
        match=r"get: CatalogError: catalog get 'data/\*\.txt' refused: 'data/victim\.txt' "
        r"resolves to .*-elsewhere/victim\.txt, outside the working folder",
    ):
        run(Pipeline(steps=[put, swap, get]))
    assert not (elsewhere / "victim.txt").exists()


def test_a_get_of_a_catalog_symlink_to_a_file_outside_is_refused(
    workdir: Path, catalog: RunCatalog
) -> None:
    outside = workdir.parent / f"{workdir.name}-other-run.log"
    outside.write_text("another run's log")
    (workdir / ".catalog" / "r1" / "logs").mkdir(parents=True)
    (workdir / ".catalog" / "r1" / "logs" / "x.log").symlink_to(outside)
    with pytest.raises(CatalogError, match=r"outside the run's catalog"):
        catalog.get(["logs/*"])
    assert not (workdir / "logs").exists()
