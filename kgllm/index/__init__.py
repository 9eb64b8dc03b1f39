"""Retrieval indices over graph artifacts: entity lexicon + linker, faiss vectors, CSR graph, PyKEEN KGE.

Takes: graph artifacts (and a corpus artifact's triple texts). Makes: index and KGE artifacts.
``load_index(dir) -> KGIndex`` is the entry point for the ask stage (see docs/index.md); ``load_kge(dir)``
loads a KGE artifact. Modules: :mod:`.stage` (config dataclasses, stage registrations), :mod:`.graph`,
:mod:`.lexicon`, :mod:`.linker`, :mod:`.vector`, :mod:`.facade` (``KGIndex`` and the ``index`` stage),
:mod:`.kge` (the ``embed`` stage), :mod:`.cli`.

Importing this package imports none of its modules: ``kgllm --help`` reads :mod:`.cli` and :mod:`.stage`
through it, and :mod:`.facade` loads numpy (faiss, sentence-transformers and torch load on first use).
The names below resolve on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .. import api

if TYPE_CHECKING:  # for type checkers only: at run time the names resolve in __getattr__
    from .facade import KGIndex, load_index
    from .kge import KGEModel

_LAZY = {"load_index": "facade", "KGIndex": "facade", "KGEModel": "kge"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_kge(d):
    """Load a KGE artifact written by ``kgllm embed`` (see :class:`kgllm.index.kge.KGEModel`)."""
    return __getattr__("KGEModel").load(d)


embed = api.embed  # kgllm.index.embed(graph, out=...): the embed stage

# kgllm.index(graphs, out=...) runs the index stage (kgllm.api.index); the package's modules stay importable.
api.callable_package(__name__, api.index)

__all__ = ["KGEModel", "KGIndex", "embed", "load_index", "load_kge"]
