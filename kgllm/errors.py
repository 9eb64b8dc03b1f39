"""Exception types. The CLI prints any ``KgllmError`` as one line (traceback only with ``-v``).

Exit codes: 2 for usage and input errors, 1 for everything else that fails, 0 for success.
"""

from __future__ import annotations


class KgllmError(Exception):
    """Base class: an error the user can act on; its message says what and where."""

    exit_code = 1


class UsageError(KgllmError):
    """Bad flags, bad config keys or values."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or override is invalid (unknown key, wrong type)."""


class InputError(KgllmError):
    """An input file or endpoint is unusable (malformed RDF, unreachable endpoint...)."""

    exit_code = 2


class ArtifactError(InputError):
    """An artifact directory is missing, incomplete or of the wrong kind."""


class MissingDependency(KgllmError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"this command needs the Python package {module!r}: pip install 'kgllm[{extra}]'")
        self.module = module
        self.extra = extra


def require(module: str, extra: str):
    """Import ``module`` or raise ``MissingDependency`` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(module, extra) from e
