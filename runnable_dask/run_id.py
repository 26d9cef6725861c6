"""Readable run ids: ``<adjective>-<noun>-<date>-<time>-<4 hex>``.

The random tail makes two runs in the same second differ; the run-log store claims the
id with an exclusive create, so even then no run log is ever overwritten.
"""

from __future__ import annotations

import secrets
from datetime import datetime

RUN_ID_ENV = "RUNNABLE_RUN_ID"
"""The variable that carries a run's id, as in runnable: set for every task while it runs,
and read by the driver to resume the run it names."""

_ADJECTIVES = (
    "amber",
    "brisk",
    "calm",
    "clever",
    "eager",
    "gentle",
    "jolly",
    "keen",
    "lucid",
    "mellow",
    "nimble",
    "quiet",
    "rapid",
    "steady",
    "sunny",
    "tidy",
    "vivid",
    "witty",
)
_NOUNS = (
    "badger",
    "comet",
    "delta",
    "falcon",
    "harbor",
    "island",
    "lantern",
    "maple",
    "meadow",
    "otter",
    "pebble",
    "quartz",
    "river",
    "summit",
    "thistle",
    "willow",
    "yarrow",
    "zephyr",
)


def generate_run_id(now: datetime | None = None) -> str:
    """A new readable run id."""
    moment = now or datetime.now()
    return "-".join(
        (
            secrets.choice(_ADJECTIVES),
            secrets.choice(_NOUNS),
            moment.strftime("%Y%m%d-%H%M%S"),
            secrets.token_hex(2),
        )
    )
