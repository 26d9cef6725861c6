"""Executors, run-log stores and catalogs, found by the ``type`` a configuration names.

Each kind is an entry-point group. An entry's name is a ``type`` of the configuration
file; its object is the pydantic model of that type's ``config`` section, which opens the
real thing (so reading a configuration imports no executor). runnable_dask registers its
own types the same way, in its ``pyproject.toml``; a package adds one by declaring, in
its own::

    [project.entry-points."runnable_dask.run_log_stores"]
    sqlite = "my_package.store:SqliteStoreConfig"

and a configuration file then names it: ``run-log-store: {type: sqlite, config: {...}}``.
A built-in type is looked up in runnable_dask's own metadata first, and keeps its name:
another package's entry of the same name does not replace it.
What each kind's model must offer is the protocol beside its built-ins:
``runnable_dask.executors.ExecutorConfig``, ``runnable_dask.stores.runlog_store.StoreConfig``
and ``runnable_dask.stores.catalog.CatalogOpener``.
"""

from __future__ import annotations

import difflib
import functools
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points

from pydantic import BaseModel

from runnable_dask.exceptions import ConfigurationError

GROUPS = {
    "pipeline-executor": "runnable_dask.executors",
    "run-log-store": "runnable_dask.run_log_stores",
    "catalog": "runnable_dask.catalogs",
}
"""The configuration file's section -> the entry-point group of its types."""


def installed(section: str) -> dict[str, EntryPoint]:
    """The types a section may name, by name."""
    return {entry.name: entry for entry in entry_points(group=GROUPS[section])}


@functools.cache
def _built_in(section: str) -> dict[str, EntryPoint]:
    """runnable_dask's own types of a section, from its own metadata alone.

    Asking every installed package (what :func:`installed` does) took 20 ms a section
    with the 195 packages of the test environment, three sections a run: a tenth of a
    run's fixed cost on a running cluster. The default configuration names only these.
    """
    try:
        own = distribution("runnable_dask").entry_points
    except PackageNotFoundError:  # run from a source folder: the full look-up decides
        return {}
    return {entry.name: entry for entry in own.select(group=GROUPS[section])}


@functools.cache
def config_model(section: str, kind: str) -> type[BaseModel]:
    """The configuration model registered for ``kind`` in ``section``, loaded."""
    found = _built_in(section)
    if kind not in found:
        found = installed(section)
    if kind not in found:
        close = difflib.get_close_matches(kind, found, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        names = (
            ", ".join(sorted(found)) or "none: runnable_dask is not installed (pip install -e .)"
        )
        raise ConfigurationError(
            f"{section}: type {kind!r} is unknown{hint}; valid types: {names}. A package "
            f"adds a type through the entry-point group {GROUPS[section]!r}"
        )
    entry = found[kind]
    try:
        model = entry.load()
    except Exception as exc:
        raise ConfigurationError(
            f"{section}: type {kind!r} comes from {entry.value!r}, which failed to import "
            f"({type(exc).__name__}: {exc}); fix or reinstall the package that provides it"
        ) from exc
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(
            f"{section}: type {kind!r} names {entry.value!r}, which is not a pydantic model; "
            "an entry point of this group must name the model of the type's config section"
        )
    return model
