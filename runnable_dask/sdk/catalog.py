"""``Catalog``: the files a task takes from the run's catalog and puts into it."""

from __future__ import annotations

import posixpath

from pydantic import Field

from runnable_dask.sdk.base import SdkModel


class Catalog(SdkModel):
    """File patterns moved between the working folder and ``.catalog/<run_id>/``.

    ``get`` patterns are copied from the catalog before the task runs (a pattern that
    matches nothing fails the task); ``put`` patterns are copied into the catalog after
    it runs. With ``store_copy=False`` puts are recorded (name and hash) but not copied.
    Patterns are relative paths that stay inside both folders: the task that holds a
    pattern with a ``..`` segment or an absolute path is refused when it is built.

    Examples:
        >>> Catalog(get=["data/*.csv"], put=["model.pkl"])
        Catalog(get=['data/*.csv'], put=['model.pkl'], store_copy=True)
    """

    get: list[str] = Field(default_factory=list)
    put: list[str] = Field(default_factory=list)
    store_copy: bool = True


def escaping_patterns(catalog: Catalog) -> list[str]:
    """Why each pattern would reach outside the working folder or the run's catalog.

    Checked when the task is built, so the message can name the task; what only shows
    when the files exist (a symlink, a glob) is checked as the files are copied.
    """
    problems = []
    for stage in ("get", "put"):
        for pattern in getattr(catalog, stage):
            why = _escape(pattern)
            if why:
                problems.append(
                    f"catalog {stage} pattern {pattern!r} {why}, so it would reach outside the "
                    "working folder or the run's catalog; name the file relative to both "
                    f"(e.g. {_suggestion(pattern)!r}), and copy anything else in the step itself"
                )
    return problems


def _escape(pattern: str) -> str:
    normal = pattern.replace("\\", "/")
    if not normal.strip():
        return "is empty"
    if normal.startswith(("/", "~")) or (len(normal) > 1 and normal[1] == ":"):
        return "is an absolute path"
    if ".." in normal.split("/"):
        return "has a '..' segment"
    return ""


def _suggestion(pattern: str) -> str:
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".", "..", "~")]
    return posixpath.join(*parts) if parts else "data/*.csv"
