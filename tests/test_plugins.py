"""Types from another package: registered through entry points, named by a configuration.

The package is written into a temporary folder with its ``.dist-info`` (the metadata pip
writes when it installs a package), and that folder is put on ``sys.path``: Python's own
entry-point discovery then finds it, as it finds any installed package.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from runnable_dask import ConfigurationError, Pipeline, PythonTask, plugins, results
from runnable_dask.cli import cli
from runnable_dask.config import LocalConfig, load_configuration

EXECUTOR_MODULE = '''
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from runnable_dask.config import LocalConfig
from runnable_dask.executors.local import LocalExecutor


class SerialConfig(BaseModel):
    """Steps one at a time, on one thread; leaves a mark where it was opened."""

    model_config = ConfigDict(extra="forbid")
    mark: str

    def open(self, events, plan):
        Path(self.mark).write_text("opened", encoding="utf-8")
        return LocalExecutor(LocalConfig(max_workers=1), events)
'''


STORE_MODULE = '''
import sqlite3
import time

from pydantic import BaseModel, ConfigDict

from runnable_dask.exceptions import RunInUseError, RunLogExistsError
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogNotFoundError


class SqliteStore:
    """Run logs as rows of one SQLite file; a run's claim is a row of its own."""

    def __init__(self, path):
        self.location = f"sqlite:///{path}"
        self._path = path
        with self._db() as db:
            db.execute("create table if not exists runs (id text primary key, doc blob, at real)")
            db.execute("create table if not exists claims (id text primary key)")

    def _db(self):
        return sqlite3.connect(self._path)

    def url(self, run_id):
        return f"{self.location}?run={run_id}"

    def exists(self, run_id):
        with self._db() as db:
            return db.execute("select 1 from runs where id = ?", (run_id,)).fetchone() is not None

    def create(self, run_log):
        try:
            with self._db() as db:
                db.execute(
                    "insert into runs values (?, ?, ?)",
                    (run_log.run_id, run_log.model_dump_json().encode(), time.time()),
                )
        except sqlite3.IntegrityError:
            raise RunLogExistsError(f"run {run_log.run_id!r} exists in {self.location}") from None

    def write(self, run_log):
        with self._db() as db:
            db.execute(
                "update runs set doc = ?, at = ? where id = ?",
                (run_log.model_dump_json().encode(), time.time(), run_log.run_id),
            )

    def read_bytes(self, run_id):
        with self._db() as db:
            row = db.execute("select doc from runs where id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunLogNotFoundError(f"no run log for run id {run_id!r} in {self.location}")
        return row[0]

    def read(self, run_id):
        return RunLog.model_validate_json(self.read_bytes(run_id))

    def run_ids(self, limit=None):
        with self._db() as db:
            rows = db.execute("select id from runs order by at desc").fetchall()
        return [row[0] for row in rows[:limit]]

    def lock(self, run_id):
        try:
            with self._db() as db:
                db.execute("insert into claims values (?)", (run_id,))
        except sqlite3.IntegrityError:
            raise RunInUseError(f"run {run_id!r} is being driven by another process") from None

    def release(self, run_id):
        with self._db() as db:
            db.execute("delete from claims where id = ?", (run_id,))


class SqliteStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str

    def open(self):
        return SqliteStore(self.path)
'''


def install(site: Path, name: str, module: str, entry_points: dict[str, dict[str, str]]) -> None:
    """Write package ``name`` (one module) and its metadata into ``site``."""
    (site / f"{name}.py").write_text(textwrap.dedent(module), encoding="utf-8")
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path where test packages are 'installed'."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    plugins.config_model.cache_clear()
    yield folder
    plugins.config_model.cache_clear()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "")).startswith(str(folder)):
            del sys.modules[name]


def double(x: int) -> int:
    return 2 * x


def test_an_executor_from_another_package_runs_a_pipeline(
    workdir: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        site,
        "serial_executor",
        EXECUTOR_MODULE,
        {"runnable_dask.executors": {"serial": "serial_executor:SerialConfig"}},
    )
    mark = workdir / "opened.txt"
    config = workdir / "serial.yaml"
    config.write_text(f"pipeline-executor:\n  type: serial\n  config: {{mark: '{mark}'}}\n")
    pipeline = Pipeline(steps=[PythonTask(name="double", function=double, returns=["y"])])
    monkeypatch.setenv("RUNNABLE_PRM_x", "21")

    run_log = pipeline.execute(configuration_file=str(config), run_id="s")

    assert run_log.status == "SUCCESS"
    assert mark.read_text(encoding="utf-8") == "opened"
    assert run_log.run_config["pipeline-executor"] == {
        "type": "serial",
        "config": {"mark": str(mark)},
    }


def test_a_run_log_store_from_another_package_keeps_the_run(
    workdir: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        site,
        "sqlite_store",
        STORE_MODULE,
        {"runnable_dask.run_log_stores": {"sqlite": "sqlite_store:SqliteStoreConfig"}},
    )
    config = workdir / "sqlite.yaml"
    config.write_text(
        "pipeline-executor: {type: local}\n"
        "run-log-store: {type: sqlite, config: {path: runs.db}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("RUNNABLE_PRM_x", "21")
    pipeline = Pipeline(steps=[PythonTask(name="double", function=double, returns=["y"])])

    pipeline.execute(configuration_file=str(config), run_id="in-sqlite")

    store = load_configuration(str(config)).run_log_store.config.open()
    assert store.location == "sqlite:///runs.db"
    run_log = results.load_run("in-sqlite", store)
    assert run_log.status == "SUCCESS"
    assert run_log.parameters["y"].value == 42
    assert [row["run_id"] for row in results.runs(store)] == ["in-sqlite"]
    assert not (workdir / ".run_log_store").exists()
    listed = CliRunner().invoke(cli, ["runs", "-c", str(config)], prog_name="runnable-dask")
    assert listed.exit_code == 0, listed.output
    assert "in-sqlite" in listed.output and "SUCCESS" in listed.output


def test_an_unknown_type_lists_the_installed_ones_theirs_included(site: Path) -> None:
    install(
        site,
        "serial_executor",
        EXECUTOR_MODULE,
        {"runnable_dask.executors": {"serial": "serial_executor:SerialConfig"}},
    )
    with pytest.raises(ConfigurationError, match=r"valid types: dask, local, mocked, serial\."):
        plugins.config_model("pipeline-executor", "argo")


def test_another_package_s_entry_of_a_built_in_name_does_not_replace_it(site: Path) -> None:
    install(
        site,
        "shadow_executor",
        EXECUTOR_MODULE,
        {"runnable_dask.executors": {"local": "shadow_executor:SerialConfig"}},
    )
    assert plugins.config_model("pipeline-executor", "local") is LocalConfig


def test_a_type_whose_module_fails_to_import_is_named(site: Path) -> None:
    install(
        site,
        "broken_executor",
        "raise RuntimeError('no GPU driver here')\n",
        {"runnable_dask.executors": {"gpu": "broken_executor:GpuConfig"}},
    )
    with pytest.raises(
        ConfigurationError,
        match=r"type 'gpu' comes from 'broken_executor:GpuConfig', which failed to import "
        r"\(RuntimeError: no GPU driver here\)",
    ):
        plugins.config_model("pipeline-executor", "gpu")


def test_an_entry_point_that_is_not_a_model_is_refused(site: Path) -> None:
    install(
        site,
        "not_a_model",
        "def opener():\n    return None\n",
        {"runnable_dask.run_log_stores": {"odd": "not_a_model:opener"}},
    )
    with pytest.raises(ConfigurationError, match=r"which is not a pydantic model"):
        plugins.config_model("run-log-store", "odd")
