"""Errors that carry a one-line, actionable message for the person running the job."""

from __future__ import annotations


class PitlakeError(Exception):
    """A problem the user can fix; ``str(err)`` says what is wrong and how to fix it."""


class ConfigError(PitlakeError):
    """Misconfiguration: missing Java, missing jars, bad argument, unknown name."""


class InputError(PitlakeError):
    """Input data that cannot be processed at all (e.g. a missing landing folder)."""
