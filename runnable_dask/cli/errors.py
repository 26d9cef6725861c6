"""The CLI's own refusals: a one-line message and exit status 2, with nothing run."""

from __future__ import annotations

import click


class UsageProblem(click.ClickException):
    """What was asked for cannot be done (no such file, function or run): exit status 2.

    Unlike ``click.UsageError`` it prints no usage text: the arguments parsed fine.
    """

    exit_code = 2
