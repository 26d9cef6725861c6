"""The run log's timestamps: the text ``datetime.isoformat`` gives, made faster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runnable_dask import timestamps
from runnable_dask.timestamps import now


def test_now_is_the_current_time_in_utc() -> None:
    before = datetime.now(timezone.utc)
    stamp = datetime.fromisoformat(now())
    after = datetime.now(timezone.utc)
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(microseconds=1) <= stamp <= after


@pytest.mark.parametrize(
    "instant_ns",
    [
        1_764_600_000_000_000_000,  # a whole second: isoformat leaves the microseconds out
        1_764_600_000_000_000_999,  # under a microsecond past it: still none
        1_764_600_000_000_001_000,
        1_764_600_059_999_999_999,  # the last microsecond of a minute, cut not rounded
        1_767_225_599_123_456_789,  # the last second of a year
        1_767_225_600_654_321_000,  # the next year's first
    ],
)
def test_now_writes_what_isoformat_writes(monkeypatch: pytest.MonkeyPatch, instant_ns: int) -> None:
    monkeypatch.setattr(timestamps.time, "time_ns", lambda: instant_ns)
    seconds, nanoseconds = divmod(instant_ns, 1_000_000_000)
    expected = datetime.fromtimestamp(seconds, timezone.utc).replace(
        microsecond=nanoseconds // 1000
    )
    assert now() == expected.isoformat()
