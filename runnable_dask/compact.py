"""Compact pickling for the small frozen records every task carries.

Dask pickles each task's arguments on their way to a worker, and a step's task carries a
handful of these records (its call, the node, the control tokens). A slotted dataclass
pickles through a state dict rebuilt with ``dataclasses.fields`` for every object; as its
class and its field values in order it pickles three times faster.
"""

from __future__ import annotations

from typing import Any


class Compact:
    """Pickles as ``(class, field values)``; for slotted dataclasses whose fields are all
    ``__init__`` arguments, in order."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        fields: tuple[str, ...] = self.__slots__
        return type(self), tuple(getattr(self, name) for name in fields)
