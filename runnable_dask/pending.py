"""Tasks that wait for their inputs, counted: a task is ready when the last one arrives.

The driver's feed holds a task until the keys it reads are submitted; the ``local``
executor holds one until the results it reads exist. Both count the same way, here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


class PendingInputs:
    """How many inputs each waiting task still lacks, and who waits for each input."""

    def __init__(self) -> None:
        self._missing: dict[str, int] = {}
        self._waiters: defaultdict[str, list[str]] = defaultdict(list)

    def wait(self, key: str, missing: Iterable[str]) -> bool:
        """``key`` waits for ``missing``, its inputs not there yet; whether it is ready
        already (none is missing)."""
        count = 0
        for dep in missing:
            self._waiters[dep].append(key)
            count += 1
        if count:
            self._missing[key] = count
        return not count

    def arrived(self, key: str) -> list[str]:
        """``key`` is there: the tasks it was the last missing input of."""
        ready = []
        for waiter in self._waiters.pop(key, ()):
            left = self._missing[waiter] - 1
            if left:
                self._missing[waiter] = left
            else:
                del self._missing[waiter]
                ready.append(waiter)
        return ready
