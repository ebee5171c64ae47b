"""Errors shared by the modules that load and apply settings.

Kept apart from `config.py` so `logs.py` (which `config.py` imports for the
default LOGS) can raise a `ConfigError` without importing `config.py` back.
"""


class ConfigError(ValueError):
    """A configuration problem, described in one line fit for the terminal."""
