"""pitlake: point-in-time correct feature tables in Delta Lake, validated, trained and registered."""

__version__ = "0.1.0"
