"""Exception types. The CLI prints any ``KgllmError`` as one line (traceback only with ``-v``).

Exit codes (the contract every command follows, documented in the README):

- 0: the artifact was written and the stage found nothing wrong;
- 1: the stage ran but its result is not a success: it wrote its artifact with ``problems`` in the
  manifest (validation errors, every line quarantined), or it had nothing to work on
  (:class:`EmptyResultError`: zero triples without ``--allow-empty``, an empty graph), or it failed;
- 2: usage and input errors, found before any work (bad flags, config values, paths, malformed input);
  nothing is written.
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


class EmptyResultError(KgllmError):
    """A stage had nothing to work on or produced nothing (zero triples, an empty graph): exit 1.

    Raised before the artifact is committed, so nothing is written; pulls accept an empty result with
    ``allow_empty`` (``--allow-empty``)."""

    exit_code = 1


class ArtifactError(InputError):
    """An artifact directory is missing, incomplete or of the wrong kind."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``timeout``, ``kill``), raised in the main thread by the CLI so that a stopped
    command cleans up exactly as on Ctrl-C: temp directories removed, worker process groups killed."""


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
