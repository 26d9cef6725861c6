"""A ``distributed.Client`` for a :class:`DaskConfig`, and the user's code shipped to it.

Where a run's cluster comes from, in this order (the console names it):

- ``address`` in the configuration: a running scheduler (``tcp://`` or ``tls://``); it
  is left running;
- ``cluster_class`` in the configuration: any Dask cluster manager by dotted path
  (``dask_jobqueue.SLURMCluster``, ``dask_kubernetes.operator.KubeCluster``,
  ``distributed.LocalCluster``), closed after;
- the Dask client this process made its default (``client = Client(...)`` in a
  notebook, as ``dask.compute`` would use it): used as it is, and left open;
- Dask's own default address, ``DASK_SCHEDULER_ADDRESS`` (the dask config
  ``scheduler-address``); left running;
- a running ``runnable-dask cluster`` (:mod:`runnable_dask.executors.standing`); left
  running;
- else a ``LocalCluster`` started for the run, scheduler, workers and dashboard on
  127.0.0.1 unless configured otherwise, closed after.

A configuration that sizes the run's own LocalCluster (``n_workers``,
``threads_per_worker``, ``processes``, ``dashboard_address``) or asks for TLS without an
address gets one, whatever else is running: what is written wins over what happens to run.

Everything opened is closed through the caller's ``ExitStack``. Remote clusters get their
package versions checked on connect, since a scheduler or worker with another Dask or
runnable_dask fails later in ways that are hard to read (the scheduler unpickles the
graph, so it needs runnable_dask too).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import cloudpickle
import dask

from runnable_dask.config import DaskConfig, SecurityConfig
from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.executors import standing
from runnable_dask.executors.reach import refused

if TYPE_CHECKING:
    from distributed import Client, LocalCluster
    from distributed.security import Security

    from runnable_dask.executors.early import EarlyCluster
    from runnable_dask.runtime.kernel_pool import KernelKey

DEFAULT_THREADS_PER_WORKER = 4
DEFAULT_DASHBOARD = "127.0.0.1:8787"
# Steps that share one input all start on the worker holding it; stealing moves the
# surplus to idle workers, and the default 1 s interval is long next to typical steps.
_EMBEDDED_SCHEDULER = {"distributed.scheduler.work-stealing-interval": "100ms"}
# Packages whose versions must agree between this process, the scheduler and workers:
# the ones Dask itself requires, plus runnable_dask, whose functions every task runs.
_MUST_MATCH = (
    "dask",
    "distributed",
    "cloudpickle",
    "msgpack",
    "tornado",
    "toolz",
    "runnable_dask",
)
_OURS = ("runnable_dask",)
# The dashboard's Pipeline page on the cluster started for a run (runnable_dask.dashboard).
_PIPELINE_PAGE = {"preload": [standing.PIPELINE_PAGE]}
_EXTRAS = {"dask_jobqueue": "jobqueue", "dask_kubernetes": "kubernetes"}


class ClusterError(RunnableDaskError):
    """The cluster could not be started or reached, or does not match this environment."""


class Connection(NamedTuple):
    """What the executor needs: the client, a line for the console naming the cluster and
    where it came from, the dashboard; whether the workers may lack the user's project
    (``ship_code``); a note for the console (a cluster found gone); the kernels every
    worker started as it started (``preloaded``: the cluster started early for the run);
    whether the cluster is the LocalCluster started for the run (``own``)."""

    client: Client
    description: str
    dashboard_link: str | None
    ship_code: bool = True
    note: str = ""
    preloaded: frozenset[KernelKey] = frozenset()
    own: bool = False


SCHEDULER_ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
STANDING_TIMEOUT = 5.0  # seconds to reach a runnable-dask cluster before starting one


def connect(config: DaskConfig, stack: ExitStack) -> Connection:
    """A client for ``config``, from the first source that applies (see the module's
    docstring); whatever it opens is closed when ``stack`` closes."""
    from runnable_dask.executors import early

    started = early.take(config)  # a LocalCluster started since the run was planned
    if started is not None:
        if not started.tracker_was_running:  # first in, so called after the cluster's close
            stack.callback(_end_resource_tracker)
        stack.callback(started.close)
    security = build_security(config.security, embedded=not config.address)
    if config.address:
        return _from(_connect_address(config, security, stack), "the configuration's address")
    if config.cluster_class:
        return _from(_start_manager(config, security, stack), "the configuration's cluster_class")
    note = passed_over = ""
    if not _asks_for_its_own(config):
        current = _process_client()
        if current is not None:
            address = str(current.scheduler.address)
            why = _unusable(current)
            if not why:
                return _from(_reached(current, address, None), "this process's Dask client")
            passed_over = (
                f"this process's Dask client ({address}) is {why}: the run does not use it"
            )
        ambient = _dask_default_address()
        if ambient is not None:
            return _connect_ambient(*ambient, config, stack)._replace(note=passed_over)
        found = standing.find()
        note = found.note
        if found.state is not None:
            connection = _connect_standing(found.state, stack)
            if isinstance(connection, Connection):
                return connection._replace(note=passed_over)
            # A scheduler that died since it was found is said (and cleaned up) as gone.
            note = standing.find().note or connection
    if started is None and not _resource_tracker_running():  # called after the cluster's close
        stack.callback(_end_resource_tracker)
    own = _start_local(config, security, stack, started)
    return own._replace(
        description=f"{own.description}, started for this run",
        ship_code=False,
        note="; ".join(n for n in (passed_over, note) if n),
        preloaded=started.kernels if started is not None else frozenset(),
        own=True,
    )


def _resource_tracker_running() -> bool:
    from multiprocessing import resource_tracker

    return getattr(resource_tracker._resource_tracker, "_pid", None) is not None


def _end_resource_tracker() -> None:
    """End the helper process multiprocessing started for the LocalCluster's workers.

    It would otherwise stay until this process exits, one more process of the run left
    behind; a later run that needs it starts it again. Private API, so guarded.
    """
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        with contextlib.suppress(Exception):
            stop()


def _from(connection: Connection, source: str) -> Connection:
    return connection._replace(description=f"{connection.description}, from {source}")


def _asks_for_its_own(config: DaskConfig) -> bool:
    """Options only a LocalCluster started for the run can honour (a TLS one too, and
    worker resources the steps ask for, which a running cluster's workers may not offer)."""
    sized = (config.n_workers, config.threads_per_worker, config.processes, config.resources)
    return any(v is not None for v in sized) or bool(config.dashboard_address or config.security)


def _process_client() -> Client | None:
    """The client this process made its default (``Client(...)``), if any."""
    if "distributed" not in sys.modules:  # no client without it
        return None
    from distributed.client import default_client

    try:
        return default_client()
    except ValueError:  # none
        return None


def usable_client() -> Client | None:
    """This process's default client, if a run can use it."""
    client = _process_client()
    return client if client is not None and not _unusable(client) else None


def _unusable(client: Client) -> str:
    """Why a run cannot use ``client`` (``""``: it can): not connected (its scheduler
    lost), or asynchronous (it cannot be called from the run's thread)."""
    if client.asynchronous:
        return "asynchronous"
    return "" if client.status == "running" else f"{client.status}, not running"


def _dask_default_address() -> tuple[str, str] | None:
    """Dask's own default scheduler, and what set it: the environment variable (read now,
    as it may be set after dask was imported) or the dask config."""
    address = os.environ.get(SCHEDULER_ADDRESS_ENV)
    if address:
        return address, SCHEDULER_ADDRESS_ENV
    configured = dask.config.get("scheduler-address", None)
    return (str(configured), "the dask config scheduler-address") if configured else None


def _connect_ambient(address: str, source: str, config: DaskConfig, stack: ExitStack) -> Connection:
    """Dask's default scheduler: set on purpose, so a scheduler not there fails the run."""
    from distributed import Client

    security = build_security(config.security, embedded=False)
    try:
        client = Client(address, timeout=config.timeout, security=security, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}, named by {source}, within "
            f"{config.timeout:g} s ({type(exc).__name__}: {exc}); start it, or unset "
            f"{SCHEDULER_ADDRESS_ENV} to run on a runnable-dask cluster or a LocalCluster "
            "started for the run"
        ) from exc
    return _from(_reached(client, address, stack), source)


def _connect_standing(state: standing.ClusterState, stack: ExitStack) -> Connection | str:
    """The running ``runnable-dask cluster``, or why it cannot serve (the run then starts
    its own: the configuration did not ask for this cluster, so its trouble should not
    stop the run). Started from this environment, its versions are known to match."""
    from distributed import Client

    try:
        client = Client(state.address, timeout=STANDING_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        return (
            f"the runnable-dask cluster at {state.address} runs (scheduler pid "
            f"{state.scheduler.pid}) but did not answer within {STANDING_TIMEOUT:g} s "
            f"({type(exc).__name__}); see runnable-dask cluster status, or stop it"
        )
    if not state.same_environment():
        try:
            check_versions(client, f"the runnable-dask cluster at {state.address}")
        except ClusterError as exc:
            _close_client(client)
            return f"{exc}; or stop it and start it from this environment"
    stack.callback(_close_client, client)
    return Connection(
        client,
        f"runnable-dask cluster {state.address} ({state.n_workers} workers x "
        f"{state.threads_per_worker} threads)",
        state.dashboard,
    )


def build_security(config: SecurityConfig | None, embedded: bool) -> Security | None:
    """``distributed.security.Security`` from certificate paths, checked to exist.

    A cluster started here (``embedded``) also needs certificates to serve with: the
    scheduler's and workers' own when given, else the client's pair.
    """
    if config is None:
        return None
    from distributed.security import Security

    paths = {
        name: value
        for name, value in config.model_dump(exclude={"require_encryption"}).items()
        if value
    }
    if embedded:
        for role in ("scheduler", "worker"):
            paths.setdefault(f"tls_{role}_cert", config.tls_client_cert)
            if config.tls_client_key:
                paths.setdefault(f"tls_{role}_key", config.tls_client_key)
    missing = [f"{name}: {path}" for name, path in paths.items() if not os.path.isfile(path)]
    if missing:
        raise ClusterError(
            "pipeline-executor.config.security names files that do not exist ("
            + "; ".join(missing)
            + "); give paths readable from the folder the pipeline runs in"
        )
    return Security(require_encryption=config.require_encryption, **paths)


def _connect_address(config: DaskConfig, security: Security | None, stack: ExitStack) -> Connection:
    from distributed import Client

    address = str(config.address)
    why = refused(address, config.timeout)
    if why:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}: {why}; start it there "
            "(dask scheduler --host 127.0.0.1 --port PORT), or fix pipeline-executor.config.address"
        )
    try:
        client = Client(address, timeout=config.timeout, security=security, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        hint = (
            " and that the certificates in security are the ones the scheduler trusts"
            if address.startswith("tls://")
            else ""
        )
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {config.timeout:g} s "
            f"({type(exc).__name__}: {exc}); check that it runs (dask scheduler) and "
            f"listens there{hint}, or fix pipeline-executor.config.address"
        ) from exc
    return _reached(client, address, stack)


def _reached(client: Client, address: str, stack: ExitStack | None) -> Connection:
    """A scheduler someone else started, reached: its versions checked, the client closed
    with ``stack`` (the scheduler is left running; no ``stack``: the client is the user's,
    left open)."""
    if stack is not None:
        stack.callback(_close_client, client)
    workers = check_versions(client, f"the Dask cluster at {address}")
    return Connection(
        client,
        f"Dask scheduler {address} ({workers} worker{'s' if workers != 1 else ''})",
        _dashboard(client),
    )


def _start_local(
    config: DaskConfig, security: Security | None, stack: ExitStack, started: EarlyCluster | None
) -> Connection:
    from distributed import Client

    if started is not None:
        cluster, security = started.result()
    else:
        cluster, security = new_local_cluster(config, security)
        stack.callback(cluster.close)
    client = Client(cluster, security=security, set_as_default=False)
    stack.callback(_close_client, client)
    n_workers, threads, processes = _local_sizes(config)
    kind = "processes" if processes else "threads"
    secured = ", TLS" if security else ""
    if config.resources:
        from runnable_dask.sdk.resources import describe

        secured += f", each offering {describe(config.resources)}"
    return Connection(
        client,
        f"LocalCluster ({n_workers} worker {kind} x {threads} threads{secured})",
        _dashboard(client),
    )


def _local_sizes(config: DaskConfig) -> tuple[int, int, bool]:
    """Workers, threads per worker, and whether workers are processes."""
    n_workers = config.n_workers or min(os.cpu_count() or 1, 4)
    threads = config.threads_per_worker or DEFAULT_THREADS_PER_WORKER
    return n_workers, threads, True if config.processes is None else config.processes


def new_local_cluster(
    config: DaskConfig, security: Security | None
) -> tuple[LocalCluster, Security | None]:
    """A LocalCluster for a run configured by ``config``, and the security it serves with."""
    from distributed import LocalCluster

    n_workers, threads, processes = _local_sizes(config)
    # Only this run may connect (see run_only_security), worker threads too: Dask's
    # in-memory transport for them would serve each worker's HTTP on every interface
    # and give the dashboard's link the machine's address.
    security = security or run_only_security()
    try:
        with warnings.catch_warnings(), dask.config.set(_EMBEDDED_SCHEDULER):
            warnings.simplefilter("ignore")
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads,
                processes=processes,
                host="127.0.0.1",
                scheduler_port=0,
                protocol="tls://",
                security=security,
                dashboard_address=config.dashboard_address or DEFAULT_DASHBOARD,
                silence_logs=logging.ERROR,
                timeout=config.timeout,
                resources=config.resources,
                scheduler_kwargs=_PIPELINE_PAGE,
            )
    except Exception as exc:
        raise ClusterError(
            f"could not start a LocalCluster ({type(exc).__name__}: {exc}). A script that "
            'starts one must run its pipeline under `if __name__ == "__main__":`, since '
            "worker processes re-import it"
        ) from exc
    return cluster, security


def run_only_security() -> Security:
    """TLS with a certificate made for this run alone, in memory (Dask's
    ``Security.temporary``): scheduler, workers and this client trust only it, so no
    other process on the machine can connect to the run's cluster, and what travels
    between them (the graph, with the secrets tasks name) is encrypted."""
    from distributed.security import Security

    return Security.temporary()


def _close_client(client: Client) -> None:
    """Close ``client``; after a lost scheduler, without the client's own tracebacks.

    A client closed while it tries to reconnect logs each cancelled attempt as an error
    with a traceback. The run has already reported the loss in plain words by then.
    """
    if client.status == "running":
        client.close()
        return
    client_logger = logging.getLogger("distributed.client")
    level = client_logger.level
    client_logger.setLevel(logging.CRITICAL)
    try:
        client.close()
    finally:
        client_logger.setLevel(level)


def _start_manager(config: DaskConfig, security: Security | None, stack: ExitStack) -> Connection:
    from distributed import Client, LocalCluster

    cls = _import_cluster_class(str(config.cluster_class))
    kwargs = dict(config.cluster_kwargs)
    if security is not None:
        kwargs.setdefault("security", security)
    if isinstance(cls, type) and issubclass(cls, LocalCluster):  # keep it on this machine
        if kwargs.get("processes", True) and "protocol" not in kwargs:  # else in-process
            kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("dashboard_address", DEFAULT_DASHBOARD)
        kwargs.setdefault("silence_logs", logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster = cls(**kwargs)
    except Exception as exc:
        raise ClusterError(
            f"{config.cluster_class}(**cluster_kwargs) failed ({type(exc).__name__}: {exc}); "
            f"check pipeline-executor.config.cluster_kwargs {sorted(config.cluster_kwargs)} "
            "against that class's documentation"
        ) from exc
    stack.callback(cluster.close)
    if config.adapt is not None:
        cluster.adapt(minimum=config.adapt.minimum, maximum=config.adapt.maximum)
        size = f"adaptive, {config.adapt.minimum}-{config.adapt.maximum} workers"
    elif config.n_workers is not None:
        cluster.scale(config.n_workers)
        size = f"{config.n_workers} workers"
    else:
        size = "workers as cluster_kwargs say"
    try:
        client = Client(cluster, security=security, timeout=config.timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"started {config.cluster_class} but could not reach its scheduler within "
            f"{config.timeout:g} s ({exc}); raise pipeline-executor.config.timeout or check "
            "the cluster's logs"
        ) from exc
    stack.callback(_close_client, client)
    check_versions(client, f"the {cls.__name__}")
    return Connection(client, f"{cls.__name__} ({size})", _dashboard(client))


def _import_cluster_class(path: str) -> Callable[..., Any]:
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.split(".")[0]
        extra = _EXTRAS.get(top)
        fix = (
            f"pip install 'runnable_dask[{extra}]'"
            if extra
            else f"install the package that provides {module_name}"
        )
        raise ClusterError(
            f"cluster_class {path!r}: cannot import {module_name} ({exc}); {fix}"
        ) from exc
    cls = getattr(module, name, None)
    if not callable(cls):
        raise ClusterError(
            f"cluster_class {path!r}: {module_name} has no class {name!r}; check the spelling"
        )
    return cls


def check_versions(client: Client, where: str) -> int:
    """Refuse a cluster whose scheduler or workers run other versions; return the workers.

    ``get_versions(check=True)`` only warns in this Dask; a mismatch here is an error,
    since a task graph pickled with one version of these packages is read by another.
    """
    versions = cast("dict[str, Any]", client.get_versions(packages=["runnable_dask"]))
    mine = _comparable(versions["client"])
    rows = []
    peers = {"scheduler": versions["scheduler"], **versions["workers"]}
    for peer, info in peers.items():
        theirs = _comparable(info)
        for package, version in mine.items():
            if theirs.get(package) != version:
                rows.append(f"{package}: here {version}, {peer} {theirs.get(package) or 'MISSING'}")
    if rows:
        raise ClusterError(
            f"{where} runs other package versions than this process:\n    "
            + "\n    ".join(rows)
            + "\n  install the same versions on the scheduler and workers (same environment, "
            "e.g. pip install runnable_dask==<version here>), then run again"
        )
    return len(versions["workers"])


def _comparable(info: Any) -> dict[str, str | None]:
    packages = (info or {}).get("packages", {})
    python = str(packages.get("python") or "")
    found = {"python": ".".join(python.split(".")[:2]) or None}  # 3.11: bytecode must match
    found.update({name: packages.get(name) for name in _MUST_MATCH})
    return found


def _dashboard(client: Client) -> str | None:
    """The dashboard's link, or None when the scheduler serves none."""
    try:
        info = client.scheduler_info(n_workers=0)
        if "dashboard" not in info.get("services", {}):
            return None
        return str(client.dashboard_link)
    except Exception:  # a cluster manager without a dashboard
        return None


# --- the user's code on remote workers ------------------------------------------------


def ship_user_modules(
    functions: Iterable[Callable[..., Any]], root: str | None = None
) -> list[str]:
    """Send the project's own modules by value, so workers elsewhere can run them.

    A pipeline's functions usually live in the user's project (``examples.common``,
    ``mylib``), importable in the driver because it runs from the project's folder, but
    not on a scheduler or worker started in another folder or on another machine. Every
    top-level module or package under ``root`` (default: the working folder), outside
    site-packages and other than runnable_dask, that holds one of ``functions`` or is
    loaded in this process, is registered with ``cloudpickle.register_pickle_by_value``.
    Returns the names.

    Why by value and not ``UploadDirectory``: in this Dask the scheduler unpickles the
    graph too (seen: "No module named 'examples'" on a scheduler started elsewhere), and
    UploadDirectory serves workers unless asked otherwise; it zips the whole project
    folder (data, catalog, run logs: 40 MB for this repository) to every worker; and a
    worker that imported a module keeps the old code until it restarts, so a changed
    function would silently not change on a long-lived cluster. By value ships only what
    the tasks use, as it is now. Measured cost: about 3.6 KB and 0.5 ms a task that
    carries a user function (200 such tasks: 0.74 MB and 0.1 s to pickle, against
    13 KB and 3 ms by reference). Data files the code opens are not shipped: they must be
    on a shared folder or in the catalog.

    Distributed pickles a graph with plain ``pickle`` first, which ignores cloudpickle's
    registry; wrap the graph with :func:`ship_graph` before submitting it.
    """
    root = os.path.realpath(root or os.getcwd())
    names: set[str] = set()
    for function in functions:
        module = (getattr(inspect.unwrap(function), "__module__", None) or "").split(".")[0]
        if module and _is_user_module(sys.modules.get(module), root):
            names.add(module)
    for name, module in list(sys.modules.items()):
        if "." not in name and _is_user_module(module, root):
            names.add(name)
    for name in sorted(names):
        cloudpickle.register_pickle_by_value(sys.modules[name])
    return sorted(names)


def _is_user_module(module: ModuleType | None, root: str) -> bool:
    """A module of the project: under ``root``, not in site-packages, and not ours (which
    the workers must have installed, at the version checked on connect). Decided by
    location: asking importlib.metadata which packages are installed took 0.7 s a run."""
    if module is None or module.__name__ in ("__main__", "__mp_main__"):
        return False  # __main__ is pickled by value already
    if module.__name__ in _OURS or module.__name__ in sys.stdlib_module_names:
        return False
    location = getattr(module, "__file__", None)
    if not location:  # namespace package: use its first folder
        location = next(iter(getattr(module, "__path__", [])), None)
    return bool(location) and _is_project_file(str(location), root)


@functools.lru_cache(maxsize=4096)
def _is_project_file(location: str, root: str) -> bool:
    """Cached: resolving the links of every loaded module's path was a tenth of a run's
    fixed cost on a running cluster (10 ms), and a file's place does not change."""
    path = os.path.realpath(location)
    inside = path == root or path.startswith(root + os.sep)
    return inside and not any(p in ("site-packages", "dist-packages") for p in path.split(os.sep))


class _ByValue:
    """Pickles its object with cloudpickle (which honours the by-value registry) even when
    the outer pickler is plain ``pickle``; unpickling gives back the object itself."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return cloudpickle.loads, (cloudpickle.dumps(self.obj),)


def ship_graph(graph: dict[str, Any]) -> dict[str, Any]:
    """``graph`` with what may hold user code pickled through cloudpickle.

    Only tuple tasks ``(function, *args)`` are rewritten: arguments that are not strings
    or containers (those may name other keys) are wrapped, and a function from a module
    shipped by value is called through :func:`_apply`. With no module registered by
    :func:`ship_user_modules` the graph is returned as it is.
    """
    registered = cloudpickle.list_registry_pickle_by_value()
    if not registered:
        return graph
    shipped: dict[str, Any] = {}
    wrapped: dict[int, Any] = {}  # one wrapper per object: the outer pickle stores it once
    for key, task in graph.items():
        if not (isinstance(task, tuple) and task and callable(task[0])):
            shipped[key] = task
            continue
        function, args = task[0], tuple(_wrap(arg, wrapped) for arg in task[1:])
        home = (getattr(function, "__module__", None) or "").split(".")[0]
        shipped[key] = (
            (_apply, _ByValue(function), *args) if home in registered else (function, *args)
        )
    return shipped


def _apply(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def _wrap(arg: Any, wrapped: dict[int, Any]) -> Any:
    from distributed import Future  # a dependency: Dask must still see it

    plain = (str, bytes, int, float, bool, list, tuple, dict, set, Future)
    if arg is None or isinstance(arg, plain):
        return arg
    if id(arg) not in wrapped:
        wrapped[id(arg)] = _ByValue(arg)
    return wrapped[id(arg)]
