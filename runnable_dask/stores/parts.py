"""A run log written in parts: while a run goes, only what changed since the last write.

The document (``<run_id>.json``, runnable's layout) is written whole when a run is claimed
and when it ends. In between, each write appends to ``.<run_id>.parts`` the records that
changed since the previous one, as JSON lines: the run's own fields, a top-level step
(without its branches, when it has some), one branch of a top-level composite (a map
item, a parallel branch), or the names of a map's items when they are listed. A map's
items that changed are known without looking at the others
(:class:`~runnable_dask.stores.packed.PackedBranches` notes them), so a write costs
what changed, not the log.

Readers fold the parts into the document (:func:`fold`): a later record replaces an
earlier one. The first line names the document the parts extend (its size and a digest
of its ends), so parts left beside a newer document (a crash between writing it and
removing them) are ignored rather than applied to it. A line cut short by a crash, the
last one, is ignored too: a run killed mid-write leaves its log as of its last whole part.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from runnable_dask.stores.packed import PackedBranches, dump_json, json_string
from runnable_dask.stores.runlog import BranchLog, RunLog, StepLog

_SAMPLE = 65536
_LINES = 1000


def base_token(document: bytes) -> str:
    """What identifies a written document for its parts: its size and a digest of its
    first and last 64 KiB (cheap on a log of 100 MB, and any rewrite changes its end)."""
    digest = hashlib.blake2b(document[:_SAMPLE] + document[-_SAMPLE:], digest_size=12)
    return f"{len(document)}:{digest.hexdigest()}"


def file_token(path: str) -> str:
    """:func:`base_token` of the document written at ``path``, read from its ends only."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(_SAMPLE)
        handle.seek(max(0, size - _SAMPLE))
        tail = handle.read()
    digest = hashlib.blake2b(head + tail, digest_size=12)
    return f"{size}:{digest.hexdigest()}"


class Journal:
    """What one run's parts say so far, to tell what changed at the next write."""

    def __init__(self, run_log: RunLog) -> None:
        self._head = b""
        self._steps: dict[str, bytes] = {}
        self._branches: dict[str, dict[str, bytes]] = {}
        for _ in self._changes(run_log):  # the document as just written: the baseline
            pass

    def changes(self, run_log: RunLog) -> Iterator[bytes]:
        """The lines to append for what changed since the last call (or the document), a
        thousand at a time: what changed in a big map is never all in memory twice."""
        lines = self._changes(run_log)
        while chunk := b"".join(itertools.islice(lines, _LINES)):
            yield chunk

    def _changes(self, run_log: RunLog) -> Iterator[bytes]:
        head = _head_json(run_log)
        if self._head != head:
            self._head = head
            yield _line({"run": 1}, head)
        for name, step in run_log.steps.items():
            branches = step.branches
            split = bool(branches)
            record = _step_json(step, split)
            if self._steps.get(name) != record:
                self._steps[name] = record
                yield _line({"step": name, "split": split}, record)
            if split:
                yield from self._branch_changes(name, branches)

    def _branch_changes(self, step: str, branches: dict[str, BranchLog]) -> Iterator[bytes]:
        """A map's items that were touched since the last write (all of them, the first
        time: the map is new, or this is the baseline); any other composite's branches."""
        written = self._branches.get(step)
        if written is None:
            written = self._branches[step] = {}
            names: Iterable[str] = list(branches)
            if isinstance(branches, PackedBranches):
                branches.touched()
        elif isinstance(branches, PackedBranches):
            names = branches.touched()
        else:
            names = list(branches)
        listed: list[str] = []
        packed = branches if isinstance(branches, PackedBranches) else None
        head = _branch_head(step)
        for name in names:
            data = packed.stored_json(name) if packed is not None else None
            if data == b"":
                written.pop(name, None)
                listed.append(name)  # a map's items listed: one part for them all
                continue
            if data is not None:  # a map item set since the last write
                written.pop(name, None)  # only branches still changing are kept here
            else:
                data = dump_json(dict.__getitem__(branches, name))
                if written.get(name) == data:
                    continue
                written[name] = data
            if listed:
                yield _line({"listed": step}, json.dumps(listed).encode())
                listed = []
            yield head + json_string(name) + b"]}\t" + data + b"\n"  # as _line's
        if listed:
            yield _line({"listed": step}, json.dumps(listed).encode())


def fold(run_log: RunLog, parts: bytes, document: bytes) -> RunLog:
    """``run_log`` (read from ``document``) with ``parts`` applied, when they extend that
    document; a line cut short at the end is left out."""
    lines = parts.split(b"\n")[:-1]  # the last piece has no newline: empty or cut short
    if not lines or json.loads(lines[0]).get("base") != base_token(document):
        return run_log
    for line in lines[1:]:
        header_json, _, record = line.partition(b"\t")
        header = json.loads(header_json)
        if "run" in header:
            head = RunLog.model_validate_json(record)
            run_log.run_id, run_log.dag_hash, run_log.tag = head.run_id, head.dag_hash, head.tag
            run_log.status, run_log.parameters = head.status, head.parameters
            run_log.run_config = head.run_config
        elif "step" in header:
            _fold_step(run_log, header["step"], bool(header.get("split")), record)
        elif "listed" in header:
            branches = run_log.steps[header["listed"]].branches
            if isinstance(branches, PackedBranches):
                branches.placeholders(json.loads(record))
            else:
                for name in json.loads(record):
                    branches.setdefault(name, BranchLog(internal_name=name))
        else:
            step_name, branch_name = header["branch"]
            branches = run_log.steps[step_name].branches
            if isinstance(branches, PackedBranches):
                dict.__setitem__(branches, branch_name, record)
            else:
                branches[branch_name] = BranchLog.model_validate_json(record)
    return run_log


def header_line(token: str) -> bytes:
    """The first line of the parts of a document (named by its :func:`base_token`)."""
    return json.dumps({"base": token}).encode() + b"\n"


def _fold_step(run_log: RunLog, name: str, split: bool, record: bytes) -> None:
    step = StepLog.model_validate_json(record)
    if split:  # its branches come as parts of their own; kept packed
        earlier = run_log.steps.get(name)
        held = earlier.branches if earlier is not None else {}
        step.branches = held if isinstance(held, PackedBranches) else PackedBranches(held)
    run_log.steps[name] = step


def _line(header: dict[str, Any], record: bytes) -> bytes:
    """One part: its header, a tab (never inside compact JSON), the record, a newline."""
    return json.dumps(header, separators=(",", ":")).encode() + b"\t" + record + b"\n"


def _branch_head(step: str) -> bytes:
    """The start of :func:`_line`'s header ``{"branch": [step, name]}`` for a map's items,
    made once per write: a ``json.dumps`` of a dict for each item was a quarter of writing
    a big map's changes."""
    return b'{"branch":[' + json.dumps(step).encode() + b","


def _head_json(run_log: RunLog) -> bytes:
    return bytes(run_log.__pydantic_serializer__.to_json(run_log, exclude={"steps"}))


def _step_json(step: StepLog, split: bool) -> bytes:
    if split:
        return bytes(step.__pydantic_serializer__.to_json(step, exclude={"branches"}))
    return dump_json(step)
