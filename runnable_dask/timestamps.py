"""Timestamps as the run log stores them (runnable's layout: ISO 8601, in UTC)."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> str:
    """A UTC timestamp as the run log stores it."""
    return datetime.now(timezone.utc).isoformat()
