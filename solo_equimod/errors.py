"""The library's own exception types, and how commands report them."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

USAGE_EXIT_STATUS = 2  # argparse's status for a usage mistake


class ConfigError(ValueError):
    """A configuration mistake (a setting, a path, a data file), with the offending key, value or
    file in the message and what would be valid."""


def report_config_error(err: ConfigError) -> int:
    """Print a configuration mistake as one `error: ...` line on stderr; the exit status to return (2)."""
    print(f"error: {err}", file=sys.stderr, flush=True)
    return USAGE_EXIT_STATUS


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """Inside it, a ConfigError ends the process with its message on stderr, one `error: ...` line
    and no traceback, and exit status 2; any other error keeps its traceback."""
    try:
        yield
    except ConfigError as err:
        raise SystemExit(report_config_error(err)) from None
