"""kgllm: turn knowledge graphs into grounded language models.

The typed Python API: one function per stage, named as the CLI names it, taking artifacts (or paths)
and a config (a dataclass and/or its keys as keywords) and returning an :class:`Artifact` with ``.path``
and ``.manifest`` (see :mod:`kgllm.api`). Importing kgllm never imports torch, trl or faiss::

    import kgllm

    g = kgllm.pull.wordnet(out="runs/wn", roots=["dog.n.01"])
    c = kgllm.validate(g, ontology=["ontologies/wordnet/wn.ttl"], reasoner="none", out="runs/wn-clean")
    idx = kgllm.index(c, out="runs/wn-index")
    kgllm.ask(idx, "What is a dog a kind of?")["answer"]

    kgllm.run_pipeline("examples/quickstart.yaml")       # a whole pipeline YAML
    for s, p, o in kgllm.iter_graph(g):                  # N-Triples terms
        ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from . import api, ask, corpus, eval, feedback, index, pull, train, validate  # noqa: E402  (the stage packages)
from .artifacts import Artifact, ArtifactWriter, Manifest, read_manifest, verify_artifact  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    EmptyResultError,
    InputError,
    KgllmError,
    MissingDependency,
    UsageError,
)
from .pipeline import Pipeline, Step, load_pipeline, run_pipeline  # noqa: E402
from .rdf import GraphWriter, iter_graph, load_store, triple_id  # noqa: E402
from .registry import Stage, get_stage, list_stages, run_stage  # noqa: E402

if TYPE_CHECKING:
    from .ask.answer import Answerer
    from .index.facade import KGIndex, load_index

# Names whose modules load numpy, pyoxigraph or faiss: resolved on first use (PEP 562).
_LAZY = {"Answerer": "kgllm.ask.answer", "KGIndex": "kgllm.index.facade", "load_index": "kgllm.index.facade"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Answerer", "Artifact", "ArtifactWriter", "ConfigError", "EmptyResultError", "GraphWriter", "InputError",
    "KGIndex", "KgllmError", "Manifest", "MissingDependency", "Pipeline", "Stage", "Step", "UsageError",
    "__version__", "api", "ask", "corpus", "eval", "feedback", "get_stage", "index", "iter_graph", "list_stages",
    "load_index", "load_pipeline", "load_store", "pull", "read_manifest", "run_pipeline", "run_stage", "train",
    "triple_id", "validate", "verify_artifact",
]
