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

from runnable_dask import ConfigurationError, Pipeline, PythonTask, plugins

EXECUTOR_MODULE = '''
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from runnable_dask.config import LocalConfig
from runnable_dask.executors.local import LocalExecutor


class SerialConfig(BaseModel):
    """Steps one at a time, on one thread; leaves a mark where it was opened."""

    model_config = ConfigDict(extra="forbid")
    mark: str

    def open(self, events):
        Path(self.mark).write_text("opened", encoding="utf-8")
        return LocalExecutor(LocalConfig(max_workers=1), events)
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


def test_an_unknown_type_lists_the_installed_ones_theirs_included(site: Path) -> None:
    install(
        site,
        "serial_executor",
        EXECUTOR_MODULE,
        {"runnable_dask.executors": {"serial": "serial_executor:SerialConfig"}},
    )
    with pytest.raises(ConfigurationError, match=r"valid types: dask, local, mocked, serial\."):
        plugins.config_model("pipeline-executor", "argo")


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
