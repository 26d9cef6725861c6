"""The configuration file: which executor runs the pipeline, where records are kept.

runnable's shape, with runnable_dask's executor types::

    pipeline-executor:
      type: dask            # or: local
      config: {n_workers: 2, threads_per_worker: 4}
    run-log-store:
      type: file-system
      config: {log_folder: .run_log_store}
    catalog:
      type: file-system
      config: {catalog_location: .catalog}   # any fsspec URL
    cache: {default: false}                  # step caching; location: any fsspec URL

Chosen by ``RUNNABLE_CONFIGURATION_FILE``, else the ``configuration_file`` argument, else
the defaults (an embedded ``LocalCluster``). Unknown keys are refused with the valid ones.

Each section's ``type`` is looked up among the registered ones (``runnable_dask.plugins``);
the models here are the built-in types' configurations, and each opens what it configures.
"""

from __future__ import annotations

import difflib
import functools
import os
import queue
import typing
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from runnable_dask import plugins
from runnable_dask.exceptions import ConfigurationError

if TYPE_CHECKING:
    from runnable_dask.executors import Executor
    from runnable_dask.plan import Plan
    from runnable_dask.stores.catalog import RunCatalog
    from runnable_dask.stores.runlog_store import RunLogStorage

CONFIGURATION_ENV = "RUNNABLE_CONFIGURATION_FILE"


class _Strict(BaseModel):
    # Built when first used: a run builds only the sections its configuration names.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class LocalConfig(_Strict):
    """In-process threads, no cluster: quick runs and tests."""

    max_workers: int | None = Field(default=None, gt=0)

    def open(self, events: queue.SimpleQueue, plan: Plan) -> AbstractContextManager[Executor]:
        from runnable_dask.executors.local import LocalExecutor
        from runnable_dask.plan import secret_names

        return LocalExecutor(self, events, secret_names(plan))


_ADDRESS_SCHEMES = ("tcp", "tls", "ws", "wss")
AUTO_REPORT_SECONDS = 30.0  # a run at least this long keeps its report unless told not to
_EMBEDDED_ONLY = ("threads_per_worker", "processes", "dashboard_address", "resources")


class AdaptConfig(_Strict):
    """Bounds for ``cluster.adapt()``: the cluster manager adds and removes workers."""

    minimum: int = Field(default=0, ge=0)
    maximum: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AdaptConfig:
        if self.minimum > self.maximum:
            raise ValueError(
                f"adapt.minimum ({self.minimum}) is larger than adapt.maximum "
                f"({self.maximum}); lower minimum or raise maximum"
            )
        return self


class SecurityConfig(_Strict):
    """TLS certificates, as paths readable by the driving process.

    The client uses ``tls_client_cert``/``tls_client_key``. A cluster started for the run
    also needs certificates for its scheduler and workers: the ``tls_scheduler_*`` and
    ``tls_worker_*`` ones when given, else the client's pair.
    """

    tls_ca_file: str
    tls_client_cert: str
    tls_client_key: str | None = None
    tls_scheduler_cert: str | None = None
    tls_scheduler_key: str | None = None
    tls_worker_cert: str | None = None
    tls_worker_key: str | None = None
    require_encryption: bool = True


class DaskConfig(_Strict):
    """Where the graph runs: one of three ways of getting a Dask cluster.

    - ``address``: a running scheduler (``tcp://`` or ``tls://``), left running after;
    - ``cluster_class``: a cluster manager by dotted path (``dask_jobqueue.SLURMCluster``)
      built with ``cluster_kwargs``, sized by ``n_workers`` (``scale``) or ``adapt``;
    - neither: a ``LocalCluster`` started for the run, on 127.0.0.1.

    ``security`` (TLS) applies to all three; ``timeout`` bounds starting or reaching it.
    ``performance_report`` keeps Dask's report of the run in its catalog: ``true`` always,
    ``false`` never; unset, for runs that took at least ``AUTO_REPORT_SECONDS``, since
    rendering it costs 0.3-3 s at the end of a run (the longer the scheduler has lived,
    the more), as much as a short run itself, and a small share of a long one.
    ``resources`` are what each worker of the ``LocalCluster`` started for the run offers
    (default: enough for its threads to run the steps that ask for resources all at once).
    """

    address: str | None = None
    cluster_class: str | None = None
    cluster_kwargs: dict[str, Any] = Field(default_factory=dict)
    adapt: AdaptConfig | None = None
    n_workers: int | None = Field(default=None, gt=0)
    threads_per_worker: int | None = Field(default=None, gt=0)
    processes: bool | None = None
    dashboard_address: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    security: SecurityConfig | None = None
    performance_report: bool | None = None
    resources: dict[str, float] | None = None

    @field_validator("resources", mode="before")
    @classmethod
    def _valid_resources(cls, value: Any) -> Any:
        from runnable_dask.sdk.resources import check_resources

        return None if value is None else check_resources(value)

    @model_validator(mode="after")
    def _one_way_to_a_cluster(self) -> DaskConfig:
        if self.address is not None:
            self._check_address(self.address)
        if self.cluster_class is not None:
            _check_dotted_path(self.cluster_class)
        if self.address and self.cluster_class:
            raise ValueError(
                "address (a running scheduler) and cluster_class (a cluster created for the "
                "run) cannot go together; keep one of them"
            )
        manager_only = [
            name
            for name, value in (("cluster_kwargs", self.cluster_kwargs), ("adapt", self.adapt))
            if value
        ]
        if manager_only and not self.cluster_class:
            raise ValueError(
                f"{', '.join(manager_only)} configure a cluster manager, so they need "
                "cluster_class (e.g. cluster_class: dask_jobqueue.SLURMCluster)"
            )
        if self.address or self.cluster_class:
            embedded = [name for name in _EMBEDDED_ONLY if getattr(self, name) is not None]
            if self.address and self.n_workers is not None:
                embedded.insert(0, "n_workers")
            if embedded and self.address:
                raise ValueError(
                    f"address connects to a running scheduler, so {', '.join(embedded)} "
                    "(options of a LocalCluster started for the run) cannot apply; remove "
                    "them, or remove address"
                )
            if embedded:
                raise ValueError(
                    f"cluster_class creates the cluster, so {', '.join(embedded)} (options "
                    "of a LocalCluster started for the run) cannot apply; put them in "
                    "cluster_kwargs instead"
                )
        if self.cluster_class and self.adapt and self.n_workers is not None:
            raise ValueError(
                "n_workers (a fixed scale) and adapt (a scale that follows the load) cannot "
                "go together; keep one of them"
            )
        return self

    def open(self, events: queue.SimpleQueue, plan: Plan) -> AbstractContextManager[Executor]:
        from runnable_dask.executors.dask import DaskExecutor
        from runnable_dask.executors.resources import offered_by_local_cluster
        from runnable_dask.plan import secret_names

        return DaskExecutor(offered_by_local_cluster(self, plan), events, secret_names(plan))

    def _check_address(self, address: str) -> None:
        scheme = address.split("://", 1)[0] if "://" in address else "tcp"
        if scheme not in _ADDRESS_SCHEMES or not address.rstrip("/").split("://")[-1]:
            raise ValueError(
                f"address {address!r} is not a scheduler address; write "
                "tcp://HOST:PORT or tls://HOST:PORT (e.g. tcp://127.0.0.1:8786)"
            )
        if scheme in ("tls", "wss") and self.security is None:
            raise ValueError(
                f"address {address!r} uses TLS, which needs certificates: add a security "
                "section (tls_ca_file, tls_client_cert, tls_client_key)"
            )
        if scheme in ("tcp", "ws") and self.security is not None:
            host = address.rsplit("://", maxsplit=1)[-1]
            raise ValueError(
                f"security is set but address {address!r} is not encrypted; write "
                f"tls://{host} (the scheduler must listen on TLS)"
            )


def _check_dotted_path(path: str) -> None:
    module, _, name = path.rpartition(".")
    if not module or not name.isidentifier():
        raise ValueError(
            f"cluster_class {path!r} is not a dotted path to a class; write "
            "module.Class (e.g. dask_jobqueue.SLURMCluster or distributed.LocalCluster)"
        )


class Patch(_Strict):
    """What a mocked run runs instead of a step: a function's dotted path (for a
    PythonTask), a shell command (ShellTask) or a notebook path (NotebookTask); and,
    optionally, the names it returns instead of the step's own ``returns``."""

    command: str
    returns: list[str | dict[str, str]] | None = None


class MockedConfig(_Strict):
    """Walk the whole pipeline without running it: only the patched steps run."""

    patches: dict[str, Patch] = Field(default_factory=dict)
    max_workers: int | None = Field(default=None, gt=0)

    def open(self, events: queue.SimpleQueue, plan: Plan) -> AbstractContextManager[Executor]:
        from runnable_dask.executors.local import LocalExecutor
        from runnable_dask.plan import secret_names

        return LocalExecutor(self, events, secret_names(plan))


DEFAULT_LOG_FOLDER = ".run_log_store"
"""Where run logs are kept when the configuration does not say (``runnable``'s default)."""


class RunLogStoreConfig(_Strict):
    """Run logs as JSON files in a folder or at any fsspec URL."""

    log_folder: str = DEFAULT_LOG_FOLDER

    def open(self) -> RunLogStorage:
        from runnable_dask.stores.runlog_store import RunLogStore

        return RunLogStore(self.log_folder)


class CatalogConfig(_Strict):
    """The catalog in a folder or at any fsspec URL."""

    catalog_location: str = ".catalog"
    run_report: bool = False  # run-report.html in the run's folder at its end (run_report.py)

    def open(self, run_id: str) -> RunCatalog:
        from runnable_dask.stores.catalog import RunCatalog

        location = self.catalog_location
        # A local folder as an absolute path: workers may run in another folder.
        return RunCatalog(location if "://" in location else os.path.abspath(location), run_id)


class SecretsSpec(_Strict):
    type: Literal["env-secrets"] = "env-secrets"
    config: dict[str, Any] = Field(default_factory=dict, max_length=0)


class CacheSpec(_Strict):
    """Step caching (docs/caching.md): ``default`` is what a task that does not set
    ``cache=`` does; ``location`` is any fsspec URL (default: ``<catalog_location>/.cache``)."""

    default: bool = False
    location: str | None = None


class TrackerSpec(_Strict):
    """An experiment tracker (:mod:`runnable_dask.tracking`): an entry point's name in the
    group ``runnable_dask.trackers`` (``mlflow``) or ``package.module:Class``, and the
    keyword arguments it is built with."""

    type: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)


class Section(_Strict):
    """A section that names a registered type and holds that type's own ``config``
    (an instance of the model the type registered; see ``runnable_dask.plugins``)."""

    type: str
    config: Any


class Configuration(_Strict):
    """The whole configuration file; each section's type is found by name when parsed."""

    pipeline_executor: Section = Field(alias="pipeline-executor")
    run_log_store: Section = Field(alias="run-log-store")
    catalog: Section
    secrets: SecretsSpec = Field(default_factory=SecretsSpec)
    tracking: list[TrackerSpec] = Field(default_factory=list)

    @field_validator("tracking", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    cache: CacheSpec = Field(default_factory=CacheSpec)


DEFAULT_TYPES = {
    "pipeline-executor": "dask",
    "run-log-store": "file-system",
    "catalog": "file-system",
}


def load_configuration(configuration_file: str = "") -> Configuration:
    """Read the configuration: the environment's file, else the argument, else defaults."""
    path = os.environ.get(CONFIGURATION_ENV) or configuration_file
    if not path:
        return parse_configuration({})
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read configuration file {path!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"configuration file {path!r} is not valid YAML: {exc}") from None
    return parse_configuration(data, source=path)


def parse_configuration(data: Any, source: str = "the configuration") -> Configuration:
    """Validate a configuration mapping; every problem is listed, with the valid keys."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a mapping of sections, got {data!r}")
    try:
        model = _model_for(_types(data))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source} is not a valid configuration: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_explain(error, model) for error in exc.errors()]
        raise ConfigurationError(
            f"{source} is not a valid configuration:\n" + "\n".join(f"  - {x}" for x in lines)
        ) from None


def _types(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The type each section names (its default where it names none)."""
    chosen = []
    for section, default in DEFAULT_TYPES.items():
        value = data.get(section)
        kind = value.get("type", default) if isinstance(value, dict) else default
        chosen.append((section, kind if isinstance(kind, str) else default))
    return tuple(chosen)


@functools.cache
def _model_for(types: tuple[tuple[str, str], ...]) -> type[Configuration]:
    """``Configuration`` with each section's ``config`` typed by the model its type
    registered, so that pydantic checks it and locates every error in it."""
    fields: dict[str, Any] = {}
    for section, kind in types:
        config = plugins.config_model(section, kind)
        spec = create_model(
            f"{config.__name__}Section",
            __base__=Section,
            type=(Literal[kind], kind),  # type: ignore[arg-type]
            config=(config, Field(default_factory=config)),
        )
        name = section.replace("-", "_")
        fields[name] = (spec, Field(default_factory=spec, alias=section))
    return create_model("Configuration", __base__=Configuration, **fields)


def _explain(error: Any, model: type[BaseModel]) -> str:
    location = [str(part) for part in error["loc"]]
    where = ".".join(location) or "(top)"
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(location[:-1], model)
        close = difflib.get_close_matches(location[-1], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {error.get('input')!r})"


def _valid_keys(location: list[str], model: type[BaseModel]) -> list[str]:
    for part in location:
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        annotation = getattr(field, "annotation", None)
        for candidate in typing.get_args(annotation) or (annotation,):  # `Model | None` too
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
    return sorted(f.alias or name for name, f in model.model_fields.items())
