"""Step caching across runs: a cached step whose code and inputs did not change since it
last succeeded is not run again; what it produced then is reused.

Design
------
**Which steps.** ``cache=True`` on a ``PythonTask``, ``ShellTask`` or ``NotebookTask``;
``cache: {default: true}`` in the configuration file for every task that does not say
``cache=False``. Mocked runs never read or write the cache.

**The key** is a SHA-256 of:

- the step's identity (:func:`~runnable_dask.runtime.cache_keys.step_identity`, computed
  once per step by the driving process, where the source files are): a function's module,
  qualified name and source, with the values it carries (a bound method's ``self``, a
  partial's arguments, closure cells, defaults); a notebook's code cells (not outputs,
  markdown or metadata) and its papermill arguments; a shell step's command. Plus the
  ``returns`` declaration and the ``Catalog`` declaration. A function's identity is its
  own source: a helper it calls is not part of it (change the step's source, or clear its
  entries, after changing a helper).
- the values of the parameters the step reads, each as a digest: a Python step reads the
  arguments its function binds (all parameters with ``**kwargs``); a shell or notebook
  step sees every parameter that is not pickled, so every such parameter counts, except
  the lists of the maps around it (an iteration is keyed by its own item). JSON and
  metric values count as canonical JSON (sorted keys); a pickled value by the digest of
  its plain pickle (content, not identity: the same arrays give the same digest in every
  run; classes and functions by their module and qualified name, also where their code
  came by value; cloudpickle only for lambdas and local classes). A cached step makes
  that digest of each pickled value it returns once, and the value carries it (its entry
  stores it for a hit), so the steps that read the value do not pickle it again; the
  list a Map makes of such values is keyed by their digests. A map iteration's item is a parameter
  like any other, so each iteration has its own key: adding an item runs one iteration.
- the content digest of every catalog file the step ``get``\\ s, read from the run's catalog.

Secrets are environment variables, never parameters: no key holds them.

**An entry** (a line of ``<cache>/packs/*.jsonl`` on a local folder, where each process
appends a run's entries to one file; ``<cache>/entries/<key>.json`` on an object store)
holds the returned parameters (JSON and metric values inline, pickled ones as blobs), the
files the step ``put`` into the catalog, its log and, for a notebook, the executed
notebook, as blobs
(``<cache>/blobs/<sha256>``: content-addressed, stored once); and who made it: run id,
step, time, the inputs' digests. Before an entry is written, the values of the step's
secrets are searched for in everything it would store: a step whose outputs or files
hold one is not cached (a warning says so); in its log they are replaced by ``***``.

**Where.** ``cache: {location: ...}``, any fsspec URL; by default ``.cache`` inside the
catalog location, so a team whose catalog is on ``s3://`` shares one cache. Blobs are
written before the entry that names them; each file is written whole (a temporary file
and a rename on a local folder), and each pack line by one ``write`` call. A step on a
cluster stores its entry before it reports; steps running in the driving process (the
``local`` executor) hand theirs to a writer thread, and the driver waits for it before
the run ends.

**A hit** restores the outputs into this run: the returned parameters go on as if the
step had run, the files are copied into this run's catalog, the log and executed
notebook too. The run log records one attempt with ``cached_from: <run_id>`` (the run
that produced the entry); the console prints ``cached   <step> (from run <run_id>)`` and
the summary counts the cached steps; ``runnable-dask show`` and ``results.steps`` carry
it. The hit is kept as the step's checkpoint like any success, so resuming and lost
workers behave the same.

**Looking up.** Each process indexes the cache once per run (a listing of its folders
and a read of each pack) and reads only the entries indexed: a miss then costs no read
of its own. An entry another run stores after the index is made is seen by the next
run.

**A miss** runs the step; a success is stored. An entry that cannot be read back (not
JSON, a blob missing or altered, a value that does not unpickle) is a miss with a
warning, printed by the console and written at the top of the step's log; failing to
store an entry is a warning too. The cache never fails a run.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import cloudpickle

from runnable_dask.runtime.attempt import AttemptResult, attempt_record
from runnable_dask.runtime.cache_keys import carrying_digest, step_identity, step_key
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import BaseTask, NotebookTask
from runnable_dask.step_logs import log_name
from runnable_dask.stores.cache_store import CacheStore, CorruptEntryError, Encoded, Index, encode
from runnable_dask.stores.catalog import CatalogError, RunCatalog
from runnable_dask.timestamps import now

if TYPE_CHECKING:
    from runnable_dask.config import Configuration
    from runnable_dask.runtime.context import RunContext

FORMAT = 1
CACHE_FOLDER = ".cache"


def default_location(catalog_location: str) -> str:
    """Where the cache lives when the configuration does not say: beside the run folders."""
    return f"{catalog_location.rstrip('/')}/{CACHE_FOLDER}"


def identifier(config: Configuration) -> Callable[[Any], str] | None:
    """For the plan: each step's identity if it is cached, else ``""``; None for a mocked
    run, which neither reads nor writes the cache."""
    if config.pipeline_executor.type == "mocked":
        return None
    default = config.cache.default
    known: dict[Any, str] = {}  # each function's identity, once per plan

    def identify(step: Any) -> str:
        if not isinstance(step, BaseTask):
            return ""
        wanted = step.cache if step.cache is not None else default
        if not wanted:
            return ""
        try:
            return step_identity(step, known)
        except Exception:  # a notebook missing or unreadable: the step fails when it runs
            return ""

    return identify


@dataclass
class Reused:
    """What a hit gives the step: its outputs and its records."""

    outputs: dict[str, Param]
    attempt: dict[str, Any]
    data_catalog: list[dict[str, Any]]


@dataclass(slots=True)
class StepCache:
    """One run of one cached step: its key, and what the cache said along the way."""

    store: CacheStore
    key: str
    inputs: dict[str, Any]
    gets: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    damaged: bool = False
    """The entry found was damaged: storing the new one rewrites its blobs too."""

    def reuse(
        self,
        task: BaseTask,
        internal_name: str,
        shown: dict[str, Param],
        catalog: RunCatalog,
    ) -> Reused | None:
        """The stored outputs, restored into this run; None on a miss."""
        if not self.key:
            return None
        try:
            index = _LISTED.index(self.store, catalog.run_id)
        except Exception as exc:  # no entry was read, so none is damaged
            self.warnings.append(
                f"the step cache at {self.store.location} could not be read "
                f"({_describe(exc)}); ran the step"
            )
            return None
        try:
            entry = self.store.read_entry(self.key, index)
            if entry is None:
                return None
            return self._restore(entry, task, internal_name, shown, catalog, now())
        except Exception as exc:  # a corrupt entry: run the step, never fail the run
            self.damaged = True
            reason = str(exc) if isinstance(exc, CorruptEntryError) else _describe(exc)
            self.warnings.append(
                f"cache entry {self.key[:12]} could not be used ({reason}); ran the step again"
            )
            return None

    def keep(
        self,
        task: BaseTask,
        internal_name: str,
        run_id: str,
        result: AttemptResult,
        catalog: RunCatalog,
        defer: bool = False,
    ) -> dict[str, Param]:
        """Store a successful attempt (``defer``: on the writer thread, for a step running
        in the driving process); a problem only costs a warning. Returns the outputs to
        pass on: pickled ones carry the digest later steps' keys read."""
        if not self.key:
            return result.outputs
        outputs = result.outputs
        try:
            if outputs:
                outputs = {name: carrying_digest(param) for name, param in outputs.items()}
            self._keep(task, internal_name, run_id, outputs, result, catalog, defer)
        except Exception as exc:
            self.warnings.append(f"not cached: the entry could not be stored ({_describe(exc)})")
        return outputs

    def note_in_log(self, catalog: RunCatalog, internal_name: str) -> None:
        """Put the warnings at the top of the step's log, where its output is read."""
        if not self.warnings:
            return
        earlier = catalog.read_bytes(log_name(internal_name)) or b""
        notes = "".join(f"runnable-dask: warning: {w}\n" for w in self.warnings)
        catalog.write_text(log_name(internal_name), notes + earlier.decode("utf-8", "replace"))

    def _restore(
        self,
        entry: dict[str, Any],
        task: BaseTask,
        internal_name: str,
        shown: dict[str, Param],
        catalog: RunCatalog,
        start: str,
    ) -> Reused:
        stored = entry.get("outputs", {})
        if sorted(stored) != sorted(r.name for r in task.returns):
            raise CorruptEntryError(f"entry {self.key[:12]} holds other returns than the step's")
        outputs = {}
        for name, output in stored.items():
            value = (
                cloudpickle.loads(self.store.blob(output["blob"]))
                if output["kind"] == "object"
                else output["value"]
            )
            outputs[name] = Param(output["kind"], value, output.get("digest", ""))
        records = [_record(catalog, path, digest, "get") for path, digest in self.gets.items()]
        for stored_file in entry.get("files", []):
            catalog.write_bytes(stored_file["path"], self.store.blob(stored_file["blob"]))
            records.append(_record(catalog, stored_file["path"], stored_file["blob"], "put"))
        produced_by = str(entry.get("run_id", ""))
        if entry.get("log"):
            text = self.store.blob(entry["log"]).decode("utf-8", "replace")
            note = f"runnable-dask: from the cache; run {produced_by} printed:\n"
            catalog.write_text(log_name(internal_name), note + text)
        if entry.get("notebook") and isinstance(task, NotebookTask):
            from runnable_dask.runtime.notebook_task import executed_notebook_name

            name = executed_notebook_name(task, internal_name)
            catalog.write_bytes(name, self.store.blob(entry["notebook"]))
        attempt = attempt_record(start, shown, outputs)
        attempt["cached_from"] = produced_by
        return Reused(outputs=outputs, attempt=attempt, data_catalog=records)

    def _keep(
        self,
        task: BaseTask,
        internal_name: str,
        run_id: str,
        outputs: dict[str, Param],
        result: AttemptResult,
        catalog: RunCatalog,
        defer: bool,
    ) -> None:
        secrets = {n: os.environ[n] for n in task.secrets if os.environ.get(n)}
        blobs: dict[str, bytes] = {}
        made: dict[str, Any] = {}  # what the step made, only what it made (see _entry)
        try:  # pickled values and files are read now: later steps may change them
            if outputs:
                made["outputs"] = {n: _stored(p, n, secrets, blobs) for n, p in outputs.items()}
            if task.catalog is not None and task.catalog.store_copy:
                made["files"] = _put_files(result, secrets, blobs)
            if isinstance(task, NotebookTask):
                made["notebook"] = _notebook(task, internal_name, catalog, secrets, blobs)
        except _HoldsSecret as exc:
            self.warnings.append(f"not cached: {exc}; secrets are never stored")
            return
        if result.output:
            data = result.output
            for value in secrets.values():
                data = data.replace(value.encode("utf-8"), b"***")
            made["log"] = _blob(data, {}, blobs)
        if blobs:
            made["size"] = sum(map(len, blobs.values()))
        created = result.attempt.get("end_time") or now()  # the attempt just ended
        pending = _Pending(
            internal_name,
            self.store,
            self.key,
            run_id,
            created,
            self.inputs,
            self.gets,
            made,
            blobs,
            self.damaged,
        )
        if defer:
            _WRITER.submit(pending)
        else:
            self.warnings.extend(warning for _, warning in _store([pending]))


def _blob(data: bytes, secrets: dict[str, str], blobs: dict[str, bytes], what: str = "") -> str:
    """Add ``data`` to the blobs an entry names, once checked for the step's secrets."""
    _check_secrets(secrets, data, what)
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def _stored(
    param: Param, name: str, secrets: dict[str, str], blobs: dict[str, bytes]
) -> dict[str, Any]:
    """A returned value as its entry holds it: inline, or pickled as a blob."""
    if param.kind == "object":
        pickled = cloudpickle.dumps(param.value)
        digest = _blob(pickled, secrets, blobs, f"return {name!r}")
        return {"kind": "object", "blob": digest, "digest": param.digest}
    if secrets:
        text = json.dumps(param.value, ensure_ascii=False).encode("utf-8")
        _check_secrets(secrets, text, f"return {name!r}")
    return {"kind": param.kind, "value": param.value}


def _put_files(
    result: AttemptResult, secrets: dict[str, str], blobs: dict[str, bytes]
) -> list[dict[str, str]]:
    """The files the step put into the catalog, each as a blob."""
    files = []
    for record in result.data_catalog:
        if record["stage"] == "put":
            with open(record["name"], "rb") as handle:
                digest = _blob(handle.read(), secrets, blobs, f"put file {record['name']!r}")
            files.append({"path": record["name"], "blob": digest})
    return files


def _notebook(
    task: NotebookTask,
    internal_name: str,
    catalog: RunCatalog,
    secrets: dict[str, str],
    blobs: dict[str, bytes],
) -> str | None:
    """A notebook step's executed notebook, as a blob."""
    from runnable_dask.runtime.notebook_task import executed_notebook_name

    data = catalog.read_bytes(executed_notebook_name(task, internal_name))
    return _blob(data, secrets, blobs, "the executed notebook") if data else None


class _Pending(NamedTuple):
    """A successful step's entry to store, as its parts, with the blobs it names (a
    tuple: one is made per step). The entry is built and encoded when stored, with its
    batch (:func:`_entry`): one after another, that code and its data stay in the
    processor's caches; between steps, each encoding took three times as long. JSON
    values are the step's own copies (``binding.to_param``), so nothing changes them
    while they wait."""

    internal_name: str
    store: CacheStore
    key: str
    run_id: str
    created: str
    inputs: dict[str, str]
    gets: dict[str, str]
    made: dict[str, Any]
    """Its outputs, files, notebook, log and size: only those the step made."""
    blobs: dict[str, bytes]
    replace: bool
    """The entry found was damaged: rewrite its blobs even where they exist."""


def _entry(pending: _Pending) -> dict[str, Any]:
    """The entry's JSON document; what is empty is left out (readers take it as empty)."""
    entry = {
        "format": FORMAT,
        "key": pending.key,
        "run_id": pending.run_id,
        "step": pending.internal_name,
        "name": pending.internal_name.rpartition(".")[2],
        "created": pending.created,
    }
    if pending.inputs or pending.gets:
        entry["inputs"] = {"parameters": pending.inputs, "gets": pending.gets}
    entry.update(pending.made)
    return entry


def _store(batch: list[_Pending]) -> list[tuple[str, str]]:
    """Store entries, each after its blobs, those of one cache in one write; (step,
    warning) for each that could not be stored."""
    failed = []
    ready: dict[str, list[tuple[_Pending, Encoded]]] = {}  # by location: a str hashes fast
    for pending in batch:
        try:
            for digest, data in pending.blobs.items():
                pending.store.put_blob(data, pending.replace, digest)
            encoded = encode(_entry(pending))
        except Exception as error:
            failed.append((pending.internal_name, _not_stored(error)))
        else:
            ready.setdefault(pending.store.location, []).append((pending, encoded))
    for pairs in ready.values():
        store = pairs[0][0].store
        entries = [encoded for _, encoded in pairs]
        try:
            store.write_entries(entries)
        except Exception as error:
            failed.extend((pending.internal_name, _not_stored(error)) for pending, _ in pairs)
            continue
        _LISTED.stored(store, entries)
    return failed


def _not_stored(error: BaseException) -> str:
    return f"not cached: the entry could not be stored ({_describe(error)})"


class _Listed:
    """Where each cache's entries are, indexed once per run in this process (a worker of
    a cluster that stays up serves many runs: each indexes anew)."""

    KEPT = 8
    """Indexes kept: runs going on at once in one process each keep theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[tuple[str, str], Index] = {}

    def index(self, store: CacheStore, run_id: str) -> Index:
        """The cache's index for this run, made by the run's first step that asks."""
        index = self._indexes.get((store.location, run_id))
        if index is not None:  # no lock once made: a lock the run's threads queue on
            return index  # while its holder waits for the interpreter cost more than a step
        with self._lock:  # one index per run, while the run's other steps wait for it
            index = self._indexes.get((store.location, run_id))
            if index is None:
                index = self._indexes[store.location, run_id] = store.index()
                if len(self._indexes) > self.KEPT:  # the oldest run's index goes
                    del self._indexes[next(iter(self._indexes))]
            return index

    def stored(self, store: CacheStore, entries: list[Encoded]) -> None:
        """Entries this process stored: a later step with one's key finds it."""
        for (location, _), index in list(self._indexes.items()):
            if location == store.location:
                index.mine.update((entry.key, entry.text) for entry in entries)


_LISTED = _Listed()


class _DeferredWrites:
    """Stores the entries of steps that run in the driving process on threads of their
    own, while the run goes on.

    A thread waits :attr:`GATHER` seconds after the first entry (less when the run ends
    and waits for it), takes everything queued by then and writes the entries of one cache
    in one call: each write releases the interpreter, and getting it back among the run's
    busy threads cost more than the write (a write per entry took the writer about 0.3 ms
    each). Two threads: a blob's write mostly waits on the file system. The driver waits
    for them (:func:`finish_writes`) before the run ends; on a cluster, each step stores
    its own entry before it reports, as its worker may not outlive the run.
    """

    THREADS = 2
    BATCH = 1000
    GATHER = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()  # never taken by a step: see ``submit``
        self._idle = threading.Condition(self._lock)
        self._flush = threading.Event()
        self._tickets = itertools.count()
        """One drawn by each entry submitted and by each :meth:`finish` (whose draw,
        less the earlier finishes', is the number of entries submitted so far)."""
        self._finishes = 0
        self._written = 0
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._failed: list[tuple[str, str]] = []

    def submit(self, pending: _Pending) -> None:
        """Queue an entry; takes no lock (the writers take theirs: a step queueing for
        a lock whose holder waited for the interpreter stalled every step behind it)."""
        if len(self._threads) < self.THREADS:
            self._start_threads()
        next(self._tickets)  # atomic: ``count`` is a C object
        self._queue.put(pending)

    def finish(self) -> list[tuple[str, str]]:
        """Wait for every pending write; (step, warning) for each that failed. A batch
        still gathering is written at once: the run waits on nothing else."""
        self._flush.set()
        with self._idle:
            submitted = next(self._tickets) - self._finishes
            self._finishes += 1
            self._idle.wait_for(lambda: self._written >= submitted)
            failed, self._failed = self._failed, []
        self._flush.clear()
        return failed

    def _start_threads(self) -> None:
        with self._lock:
            while len(self._threads) < self.THREADS:
                thread = threading.Thread(target=self._work, name="runnable-dask-cache")
                thread.daemon = True
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._flush.wait(self.GATHER)
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                failed = _store(batch)
            except Exception as error:  # never leave the driver waiting
                failed = [(p.internal_name, _not_stored(error)) for p in batch]
            with self._idle:
                self._failed.extend(failed)
                self._written += len(batch)
                self._idle.notify_all()


_WRITER = _DeferredWrites()


def finish_writes() -> list[tuple[str, str]]:
    """Wait for the entries stored in the background; (step, warning) for each failure."""
    return _WRITER.finish()


class _HoldsSecret(Exception):
    """What a step would store holds the value of one of its secrets."""


def _check_secrets(secrets: dict[str, str], data: bytes, what: str) -> None:
    for name, value in secrets.items():
        if value.encode("utf-8") in data:
            raise _HoldsSecret(f"{what} holds the value of secret {name}")


def prepare(
    ctx: RunContext,
    identity: str,
    task: BaseTask,
    params: dict[str, Param],
    catalog: RunCatalog,
    map_lists: frozenset[str] = frozenset(),
) -> StepCache | None:
    """The step's cache for this run, or None when it is not cached (or cannot be keyed:
    a ``get`` that matches nothing fails the step when it runs, with its own message).

    ``map_lists`` names the lists of the maps around the step: a shell or notebook step
    sees them, but an iteration is keyed by its own item, not by every item of its map.
    """
    if not identity or not ctx.cache_location:
        return None
    try:
        gets = catalog.digests(task.catalog.get) if task.catalog and task.catalog.get else {}
        key, inputs = step_key(identity, task, params, gets, map_lists)
    except CatalogError:
        return None
    except Exception as exc:  # a value neither pickle takes: run it, uncached
        cache = StepCache(_store_at(ctx.cache_location), "", {}, {})
        cache.warnings.append(f"not cached: its inputs cannot be keyed ({_describe(exc)})")
        return cache
    return StepCache(_store_at(ctx.cache_location), key, inputs, gets)


@functools.lru_cache(maxsize=16)
def _store_at(location: str) -> CacheStore:
    """One store object per location, not one per step."""
    return CacheStore(location)


def _record(catalog: RunCatalog, path: str, digest: str, stage: str) -> dict[str, Any]:
    return {
        "name": path,
        "data_hash": digest,
        "catalog_relative_path": f"{catalog.run_id}/{path}",
        "catalog_handler_location": catalog.location,
        "stage": stage,
    }


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
