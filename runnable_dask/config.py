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

Chosen by ``RUNNABLE_CONFIGURATION_FILE``, else the ``configuration_file`` argument, else
the defaults (an embedded ``LocalCluster``). Unknown keys are refused with the valid ones.
"""

from __future__ import annotations

import difflib
import os
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runnable_dask.exceptions import ConfigurationError

CONFIGURATION_ENV = "RUNNABLE_CONFIGURATION_FILE"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LocalConfig(_Strict):
    """In-process threads, no cluster: quick runs and tests."""

    max_workers: int | None = Field(default=None, gt=0)


class DaskConfig(_Strict):
    """An existing scheduler (``address``) or a ``LocalCluster`` started for the run."""

    address: str | None = None
    n_workers: int | None = Field(default=None, gt=0)
    threads_per_worker: int | None = Field(default=None, gt=0)
    processes: bool | None = None
    dashboard_address: str | None = None
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _address_or_cluster(self) -> DaskConfig:
        if self.address:
            local_only = [
                name
                for name in ("n_workers", "threads_per_worker", "processes", "dashboard_address")
                if getattr(self, name) is not None
            ]
            if local_only:
                raise ValueError(
                    f"address connects to a running scheduler, so {', '.join(local_only)} "
                    "(options of a LocalCluster started for the run) cannot apply; remove "
                    "them, or remove address"
                )
        return self


class LocalExecutorSpec(_Strict):
    type: Literal["local"]
    config: LocalConfig = Field(default_factory=LocalConfig)


class DaskExecutorSpec(_Strict):
    type: Literal["dask"]
    config: DaskConfig = Field(default_factory=DaskConfig)


ExecutorSpec = Annotated[DaskExecutorSpec | LocalExecutorSpec, Field(discriminator="type")]


class RunLogStoreConfig(_Strict):
    log_folder: str = ".run_log_store"


class RunLogStoreSpec(_Strict):
    type: Literal["file-system"] = "file-system"
    config: RunLogStoreConfig = Field(default_factory=RunLogStoreConfig)


class CatalogConfig(_Strict):
    catalog_location: str = ".catalog"


class CatalogSpec(_Strict):
    type: Literal["file-system"] = "file-system"
    config: CatalogConfig = Field(default_factory=CatalogConfig)


class SecretsSpec(_Strict):
    type: Literal["env-secrets"] = "env-secrets"
    config: dict[str, Any] = Field(default_factory=dict, max_length=0)


class Configuration(_Strict):
    """The whole configuration file."""

    pipeline_executor: ExecutorSpec = Field(
        default_factory=lambda: DaskExecutorSpec(type="dask"), alias="pipeline-executor"
    )
    run_log_store: RunLogStoreSpec = Field(default_factory=RunLogStoreSpec, alias="run-log-store")
    catalog: CatalogSpec = Field(default_factory=CatalogSpec)
    secrets: SecretsSpec = Field(default_factory=SecretsSpec)


def load_configuration(configuration_file: str = "") -> Configuration:
    """Read the configuration: the environment's file, else the argument, else defaults."""
    path = os.environ.get(CONFIGURATION_ENV) or configuration_file
    if not path:
        return Configuration()
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
        return Configuration.model_validate(data)
    except ValidationError as exc:
        lines = [_explain(error) for error in exc.errors()]
        raise ConfigurationError(
            f"{source} is not a valid configuration:\n" + "\n".join(f"  - {x}" for x in lines)
        ) from None


def _explain(error: Any) -> str:
    location = [str(part) for part in error["loc"]]
    where = ".".join(part for part in location if part not in ("dask", "local")) or "(top)"
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(location[:-1])
        close = difflib.get_close_matches(location[-1], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    if error["type"] == "union_tag_invalid":
        return f"{where}: type {error['input'].get('type')!r} is unknown; valid types: dask, local"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {error.get('input')!r})"


def _valid_keys(location: list[str]) -> list[str]:
    model: type[BaseModel] = Configuration
    for part in location:
        if part in ("dask", "local"):
            model = DaskExecutorSpec if part == "dask" else LocalExecutorSpec
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return sorted(f.alias or name for name, f in model.model_fields.items())
