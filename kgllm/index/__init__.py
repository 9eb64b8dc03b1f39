"""Retrieval indices over graph artifacts: entity lexicon + linker, faiss vectors, CSR graph, PyKEEN KGE.

``load_index(dir) -> KGIndex`` is the entry point for the ask stage (see docs/index.md). Importing this
package imports numpy only; faiss, sentence-transformers and torch load on first use.
"""

from __future__ import annotations


def load_index(d, mmap: bool = True):
    """Load an index artifact written by ``kgllm index`` (see :class:`kgllm.index.facade.KGIndex`)."""
    from .facade import load_index as _load

    return _load(d, mmap=mmap)


def load_kge(d):
    """Load a KGE artifact written by ``kgllm embed`` (see :class:`kgllm.index.kge.KGEModel`)."""
    from .kge import KGEModel

    return KGEModel.load(d)


__all__ = ["load_index", "load_kge"]
