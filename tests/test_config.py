"""The configuration file: defaults, executor types, and refusals that say what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from runnable_dask import ConfigurationError, Pipeline, Stub
from runnable_dask.config import (
    DaskConfig,
    LocalConfig,
    load_configuration,
    parse_configuration,
)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_without_a_file(workdir: Path) -> None:
    config = load_configuration("")
    assert config.pipeline_executor.type == "dask"
    assert isinstance(config.pipeline_executor.config, DaskConfig)
    assert config.pipeline_executor.config.address is None
    assert config.run_log_store.config.log_folder == ".run_log_store"
    assert config.catalog.config.catalog_location == ".catalog"


def test_local_executor(workdir: Path) -> None:
    path = write(
        workdir / "c.yaml", "pipeline-executor:\n  type: local\n  config:\n    max_workers: 3\n"
    )
    config = load_configuration(path)
    assert config.pipeline_executor.type == "local"
    assert isinstance(config.pipeline_executor.config, LocalConfig)
    assert config.pipeline_executor.config.max_workers == 3


def test_dask_executor_with_cluster_options(workdir: Path) -> None:
    path = write(
        workdir / "c.yaml",
        "pipeline-executor:\n"
        "  type: dask\n"
        "  config: {n_workers: 2, threads_per_worker: 4, processes: false}\n"
        "run-log-store:\n"
        "  type: file-system\n"
        "  config: {log_folder: logs}\n"
        "catalog:\n"
        "  type: file-system\n"
        "  config: {catalog_location: 'memory://catalog'}\n",
    )
    config = load_configuration(path)
    executor = config.pipeline_executor
    assert isinstance(executor.config, DaskConfig)
    assert (executor.config.n_workers, executor.config.threads_per_worker) == (2, 4)
    assert executor.config.processes is False
    assert config.run_log_store.config.log_folder == "logs"
    assert config.catalog.config.catalog_location == "memory://catalog"


def test_cache_section() -> None:
    config = parse_configuration({"cache": {"default": True, "location": "s3://team/cache"}})
    assert (config.cache.default, config.cache.location) == (True, "s3://team/cache")
    assert parse_configuration({}).cache.default is False


def test_dask_executor_with_an_address() -> None:
    config = parse_configuration(
        {"pipeline-executor": {"type": "dask", "config": {"address": "tcp://10.0.0.1:8786"}}}
    )
    assert config.pipeline_executor.config.address == "tcp://10.0.0.1:8786"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"pipeline-executor": {"type": "local", "config": {"max_worker": 2}}},
            r"pipeline-executor\.config\.max_worker: unknown key \(did you mean 'max_workers'\?\)"
            r"; valid keys here: max_workers",
            id="unknown executor option, did you mean",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "dask", "config": {"n_worker": 2}}},
            r"unknown key \(did you mean 'n_workers'\?\); valid keys here: adapt, address, "
            r"cluster_class, cluster_kwargs, dashboard_address, n_workers, "
            r"performance_report, processes, resources, security, threads_per_worker, timeout",
            id="unknown dask option lists the valid ones",
        ),
        pytest.param(
            {"run-log-stor": {}},
            r"run-log-stor: unknown key \(did you mean 'run-log-store'\?\); valid keys here: "
            r"cache, catalog, pipeline-executor, run-log-store, secrets",
            id="unknown section",
        ),
        pytest.param(
            {"cache": {"defualt": True}},
            r"cache\.defualt: unknown key \(did you mean 'default'\?\); valid keys here: "
            r"default, location",
            id="unknown cache option",
        ),
        pytest.param(
            {"catalog": {"type": "file-system", "config": {"location": "x"}}},
            r"catalog\.config\.location: unknown key.*valid keys here: catalog_location",
            id="unknown catalog option",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "argo"}},
            r"type 'argo' is unknown; valid types: dask, local, mocked\. A package adds a "
            r"type through the entry-point group 'runnable_dask\.executors'",
            id="unknown executor type",
        ),
        pytest.param(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"address": "tcp://h:8786", "n_workers": 2},
                }
            },
            r"address connects to a running scheduler, so n_workers .*cannot apply",
            id="address and n_workers",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "dask", "config": {"address": "tls://h:8786"}}},
            r"address 'tls://h:8786' uses TLS, which needs certificates: add a security",
            id="tls address without security",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "dask", "config": {"cluster_kwargs": {"cores": 4}}}},
            r"cluster_kwargs configure a cluster manager, so they need cluster_class",
            id="cluster_kwargs without cluster_class",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "dask", "config": {"cluster_class": "SLURMCluster"}}},
            r"cluster_class 'SLURMCluster' is not a dotted path to a class",
            id="cluster_class not dotted",
        ),
        pytest.param(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"cluster_class": "a.B", "adapt": {"minimum": 3, "maximum": 1}},
                }
            },
            r"adapt.minimum \(3\) is larger than adapt.maximum \(1\)",
            id="adapt bounds reversed",
        ),
        pytest.param(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"address": "tls://h:1", "security": {"tls_ca_fil": "x"}},
                }
            },
            r"security.tls_ca_fil: unknown key \(did you mean 'tls_ca_file'\?\)",
            id="security typo",
        ),
        pytest.param(
            {"pipeline-executor": {"type": "dask", "config": {"n_workers": 0}}},
            r"n_workers: .*greater than 0 \(got 0\)",
            id="zero workers",
        ),
        pytest.param(
            ["pipeline-executor"],
            r"expected a mapping of sections",
            id="not a mapping",
        ),
    ],
)
def test_bad_configuration_is_refused(data: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_configuration(data)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_configuration(
            {
                "pipeline-executor": {"type": "local", "config": {"max_worker": 2}},
                "catalg": {},
            }
        )
    message = str(caught.value)
    assert "max_worker" in message
    assert "did you mean 'catalog'" in message


def test_environment_variable_wins_over_the_argument(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argument = write(workdir / "arg.yaml", "pipeline-executor:\n  type: dask\n")
    chosen = write(workdir / "env.yaml", "pipeline-executor:\n  type: local\n")
    monkeypatch.setenv("RUNNABLE_CONFIGURATION_FILE", chosen)
    assert load_configuration(argument).pipeline_executor.type == "local"


def test_missing_file_is_named(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read configuration file 'nope\.yaml'"):
        load_configuration("nope.yaml")


def test_invalid_yaml_is_named(workdir: Path) -> None:
    path = write(workdir / "bad.yaml", "pipeline-executor: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"'.*bad\.yaml' is not valid YAML"):
        load_configuration(path)


def test_errors_name_the_file(workdir: Path) -> None:
    path = write(workdir / "typo.yaml", "pipeline-executor:\n  type: local\n  confg: {}\n")
    with pytest.raises(ConfigurationError, match=r"typo\.yaml is not a valid configuration"):
        load_configuration(path)


def test_an_empty_file_means_the_defaults(workdir: Path) -> None:
    path = write(workdir / "empty.yaml", "")
    assert load_configuration(path) == load_configuration("")


def test_a_bad_configuration_stops_the_run_before_any_run_log(workdir: Path) -> None:
    path = write(workdir / "typo.yaml", "pipeline-executor:\n  type: locl\n")
    with pytest.raises(ConfigurationError, match="type 'locl' is unknown"):
        Pipeline(steps=[Stub(name="a")]).execute(configuration_file=path, run_id="r")
    assert not (workdir / ".run_log_store" / "r.json").exists()


def test_run_log_store_and_catalog_folders_are_used(workdir: Path) -> None:
    path = write(
        workdir / "c.yaml",
        "pipeline-executor: {type: local}\n"
        "run-log-store: {type: file-system, config: {log_folder: my_logs}}\n"
        "catalog: {type: file-system, config: {catalog_location: my_catalog}}\n",
    )
    run_log = Pipeline(steps=[Stub(name="a")]).execute(configuration_file=path, run_id="r")
    assert run_log.status == "SUCCESS"
    assert (workdir / "my_logs" / "r.json").exists()
    assert not (workdir / ".run_log_store").exists()
    assert run_log.run_config["pipeline-executor"]["type"] == "local"
