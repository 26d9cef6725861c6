"""Records that many tasks carry, pickled once per process instead of once per task.

Every task of a map carries the same run context and the same step (its node, with the
step's definition inside); a Parallel's branches share the context. Dask pickles each
task on its own, in the driver and again in the scheduler for the worker that runs it:
the profile of a 10,000-item map on a cluster put the scheduler's pickling of these
records at a tenth of its busy time, and they made up four fifths of each task's bytes.

:func:`reduce_once` pickles a record as bytes made once per process and object: the
pickler then copies one bytes object (one copy per graph, since its memo sees the same
object each time) instead of walking the record's fields. Unpickled, the bytes give one
shared record per process (a worker or the scheduler rebuilds it once, and pickles it
again with the bytes it came with). Records are frozen, so sharing them is safe.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from typing import Any

import cloudpickle

from runnable_dask.compact import Compact

KEPT = 4096
"""Records remembered each way per process; the oldest is forgotten first."""

Reduced = tuple[Any, tuple[bytes]]
"""A record's ``__reduce__`` value: the function that rebuilds it, and its bytes."""
Held = tuple[Any, frozenset[str], Reduced]
"""A record (kept alive, so its id is not reused), the modules shipped by value when its
bytes were made, and its ``__reduce__`` value (the same tuple each time: a graph that
carries the record many times pickles it once, and adds no object per task)."""

_blobs: OrderedDict[int, Held] = OrderedDict()
_records: OrderedDict[bytes, Any] = OrderedDict()
_lock = threading.Lock()


def reduce_once(record: Compact) -> Reduced:
    """``record``'s ``__reduce__`` value, its fields pickled once in this process.

    The bytes are remade when the modules shipped by value change, so a record never
    goes out in the form it had before they were registered.
    """
    shipped = _shipped()
    held = _blobs.get(id(record))
    if held is None or held[0] is not record or held[1] != shipped:
        blob = _pickled(Compact.__reduce__(record), shipped)
        held = (record, shipped, (_loaded, (blob,)))
        _remember(_blobs, id(record), held)
    return held[2]


def _pickled(value: Any, shipped: frozenset[str]) -> bytes:
    """``value`` by the standard pickler, unless its bytes would name what a worker may not
    import (``__main__``: a script's or a notebook's function; a module shipped by value)
    or it cannot pickle it (a lambda, a function defined in a function): then by
    cloudpickle, which pickles those by value. Dask chooses the same way
    (``distributed.protocol.pickle.dumps``). cloudpickle alone took three times as long
    (21 against 6.5 us for a step of wide 1000), for every step of every run."""
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if b"__main__" in blob or any(module.encode() in blob for module in shipped):
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return blob


def _loaded(blob: bytes) -> Any:
    """The record ``blob`` holds: built once in this process, then shared.

    The record keeps ``blob`` as its bytes each time it comes: a scheduler in the driving
    process (a LocalCluster) unpickles a rerun's records from the last run's, while the
    driver's own pickling of the rerun's graph pushed their bytes out, and pickled most
    of them again to send them to the workers (2,700 of wide 1000's 3,000 steps).
    """
    record = _records.get(blob)
    if record is None:
        kind, fields = pickle.loads(blob)
        record = kind(*fields)
        _remember(_records, blob, record)
    held = _blobs.get(id(record))
    if held is None or held[0] is not record:
        _remember(_blobs, id(record), (record, _shipped(), (_loaded, (blob,))))
    return record


def _shipped() -> frozenset[str]:
    """The modules cloudpickle ships by value now."""
    return frozenset(cloudpickle.list_registry_pickle_by_value())


def _remember(kept: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value``; forget the oldest past :data:`KEPT` (``popitem``: a plain dict's
    first key is found by walking past the slots its deletions left, 3.7 against 0.6 us)."""
    with _lock:
        kept[key] = value
        while len(kept) > KEPT:
            kept.popitem(last=False)
