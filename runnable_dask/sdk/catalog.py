"""``Catalog``: the files a task takes from the run's catalog and puts into it."""

from __future__ import annotations

from pydantic import Field

from runnable_dask.sdk.base import SdkModel


class Catalog(SdkModel):
    """File patterns moved between the working folder and ``.catalog/<run_id>/``.

    ``get`` patterns are copied from the catalog before the task runs (a pattern that
    matches nothing fails the task); ``put`` patterns are copied into the catalog after
    it runs. With ``store_copy=False`` puts are recorded (name and hash) but not copied.

    Examples:
        >>> Catalog(get=["data/*.csv"], put=["model.pkl"])
        Catalog(get=['data/*.csv'], put=['model.pkl'], store_copy=True)
    """

    get: list[str] = Field(default_factory=list)
    put: list[str] = Field(default_factory=list)
    store_copy: bool = True
