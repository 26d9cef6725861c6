"""The run's catalog, ``<location>/<run_id>/``, reached through fsspec.

Tasks copy files between their working folder and the catalog, and store their logs and
executed notebooks there. Through fsspec the location may be a local folder, a shared
folder or an object store, so workers on other machines see the same catalog.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import posixpath
from dataclasses import dataclass
from typing import Any, Protocol

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from runnable_dask.exceptions import RunnableDaskError

CatalogRecord = dict[str, Any]


class CatalogError(RunnableDaskError):
    """A catalog pattern matched nothing, or a file could not be moved."""


@dataclass(frozen=True, slots=True)
class RunCatalog:
    """One run's folder in the catalog."""

    location: str
    run_id: str

    @property
    def _fs_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, base = _filesystem(self.location)
        return fs, f"{base.rstrip('/')}/{self.run_id}"

    def url(self, relative: str = "") -> str:
        """A path or URL a person can open: the run's folder or a file in it."""
        tail = f"/{relative}" if relative else ""
        return f"{self.location.rstrip('/')}/{self.run_id}{tail}"

    def get(self, patterns: list[str]) -> list[CatalogRecord]:
        """Copy files matching ``patterns`` from the catalog into the working folder."""
        fs, root = self._fs_root
        records = []
        for pattern in patterns:
            matches = [m for m in fs.glob(f"{root}/{pattern}") if fs.isfile(m)]
            if not matches:
                raise CatalogError(
                    f"catalog get {pattern!r} matched nothing in {self.url()}; an earlier "
                    "step must put it first (Catalog(put=[...])), or fix the pattern"
                )
            for match in matches:
                relative = match[len(root) + 1 :]
                _check_inside(fs, "get", pattern, match, root, "the run's catalog")
                _check_inside(None, "get", pattern, relative, os.getcwd(), "the working folder")
                folder = os.path.dirname(relative)
                if folder:
                    os.makedirs(folder, exist_ok=True)
                fs.get_file(match, relative)
                records.append(self._record(relative, "get"))
        return records

    def digests(self, patterns: list[str]) -> dict[str, str]:
        """The SHA-256 of each file ``get`` would copy, by path in the run's folder."""
        fs, root = self._fs_root
        found = {}
        for pattern in patterns:
            matches = [m for m in fs.glob(f"{root}/{pattern}") if fs.isfile(m)]
            if not matches:
                raise CatalogError(f"catalog get {pattern!r} matched nothing in {self.url()}")
            for match in matches:
                found[match[len(root) + 1 :]] = hashlib.sha256(fs.cat_file(match)).hexdigest()
        return found

    def put(
        self, patterns: list[str], store_copy: bool = True, require_match: bool = True
    ) -> list[CatalogRecord]:
        """Copy files matching ``patterns`` from the working folder into the catalog.

        A pattern that matches nothing is an error when ``require_match`` (the step said
        it would write the file); after a failed step, what exists is put and the rest
        is passed over.
        """
        fs, root = self._fs_root
        records = []
        for pattern in patterns:
            files = _local_files(pattern)
            if not files and require_match:
                raise CatalogError(
                    f"catalog put {pattern!r} matched no file in {os.getcwd()}; the step "
                    "must write it there (relative to the working folder), or fix the pattern"
                )
            for relative in files:
                _check_inside(None, "put", pattern, relative, os.getcwd(), "the working folder")
                if store_copy:
                    target = f"{root}/{relative}"
                    _check_inside(fs, "put", pattern, target, root, "the run's catalog")
                    fs.makedirs(os.path.dirname(target), exist_ok=True)
                    fs.put_file(relative, target)
                records.append(self._record(relative, "put"))
        return records

    def write_text(self, relative: str, text: str) -> str:
        """Store ``text`` (a step's log) at ``relative``; return where it is."""
        return self.write_bytes(relative, text.encode("utf-8"))

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Store ``data`` at ``relative``; return where it is."""
        fs, root = self._fs_root
        target = f"{root}/{relative}"
        if isinstance(fs, LocalFileSystem):  # plain files: half fsspec's cost, per step
            try:
                _write_local(target, data)
            except FileNotFoundError:  # the run's first file there: make the folder
                os.makedirs(os.path.dirname(target), exist_ok=True)
                _write_local(target, data)
            return self.url(relative)
        try:
            fs.pipe_file(target, data)
        except FileNotFoundError:  # the run's first log: its folder does not exist yet
            fs.makedirs(os.path.dirname(target), exist_ok=True)
            fs.pipe_file(target, data)
        return self.url(relative)

    def read_bytes(self, relative: str) -> bytes | None:
        """The content stored at ``relative``, or None if there is none."""
        fs, root = self._fs_root
        target = f"{root}/{relative}"
        try:
            if isinstance(fs, LocalFileSystem):
                with open(target, "rb") as handle:
                    return handle.read()
            return fs.cat_file(target)
        except FileNotFoundError:
            return None

    def local_path(self, relative: str) -> str | None:
        """The file's path on this machine's disk, or None when the catalog is elsewhere
        (for what fsspec cannot do everywhere, such as appending)."""
        fs, root = self._fs_root
        return f"{root}/{relative}" if isinstance(fs, LocalFileSystem) else None

    def list_files(self, folder: str) -> list[str]:
        """The files under ``folder``, as paths relative to the run's folder."""
        fs, root = self._fs_root
        base = f"{root}/{folder}"
        if not fs.exists(base):
            return []
        return sorted(path[len(root) + 1 :] for path in fs.find(base))

    def store_file(self, local_path: str, relative: str) -> str:
        """Copy one local file (an executed notebook) to ``relative``; return where it is."""
        fs, root = self._fs_root
        target = f"{root}/{relative}"
        fs.makedirs(os.path.dirname(target), exist_ok=True)
        fs.put_file(local_path, target)
        return self.url(relative)

    def _record(self, relative: str, stage: str) -> CatalogRecord:
        return {
            "name": relative,
            "data_hash": _sha256(relative),
            "catalog_relative_path": f"{self.run_id}/{relative}",
            "catalog_handler_location": self.location,
            "stage": stage,
        }


@functools.lru_cache(maxsize=16)
def _filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Resolving a location costs more than a small write: once per process is enough."""
    return url_to_fs(location)


def _write_local(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _check_inside(
    fs: fsspec.AbstractFileSystem | None,
    stage: str,
    pattern: str,
    path: str,
    folder: str,
    folder_name: str,
) -> None:
    """Refuse a copy whose file resolves outside ``folder`` (``fs`` None: the local disk).

    On a local disk symlinks are followed, so a link in the working folder or the
    catalog cannot carry a copy elsewhere; an object store has no links to follow.
    """
    if fs is None or isinstance(fs, LocalFileSystem):
        resolved = os.path.realpath(path)
        base = os.path.realpath(folder)
        inside = os.path.commonpath([resolved, base]) == base
    else:
        resolved = posixpath.normpath(path)
        base = posixpath.normpath(folder)
        inside = resolved.startswith(f"{base}/")
    if not inside:
        raise CatalogError(
            f"catalog {stage} {pattern!r} refused: {path!r} resolves to {resolved}, outside "
            f"{folder_name} ({base}); a catalog copy stays inside the working folder and the "
            "run's catalog, so copy that file in the step itself or move it inside"
        )


def _local_files(pattern: str) -> list[str]:
    found: list[str] = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isdir(match):
            for folder, _, files in os.walk(match):
                found.extend(os.path.join(folder, name) for name in sorted(files))
        else:
            found.append(match)
    return [os.path.normpath(path) for path in found]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class CatalogOpener(Protocol):
    """What a catalog type registers (entry-point group ``runnable_dask.catalogs``): the
    pydantic model of its ``config`` section, which gives a run its catalog. Tasks reach
    the catalog through fsspec, so a type chooses where (and with which fsspec options)
    runs keep their files, for instance a bucket named per team."""

    def open(self, run_id: str) -> RunCatalog: ...
