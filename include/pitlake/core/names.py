"""Names given on a command line that end up in a path or a registry filter: one safe alphabet."""

from __future__ import annotations

import re

from pitlake.core.errors import ConfigError

# Letters, digits, '_', '-', '.', not starting with '.': no path separator, no '..', no quote.
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_name(value: str, what: str) -> str:
    """``value`` when it is a safe name, else a one-line :class:`ConfigError` naming ``what``."""
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{what} {value!r} is not a valid name: use letters, digits, '_', '-' and '.' "
            "(no path separators, no '..', no quotes; at most 128 characters)"
        )
    return value
