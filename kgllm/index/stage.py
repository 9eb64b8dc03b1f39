"""Run functions of the ``index`` and ``embed`` stages.

Takes: graph artifacts (and, for ``index``, optionally a corpus artifact: an input of kind ``corpus`` or
``config.corpus``).
Makes: an index artifact (kgllm.index.facade) or a KGE artifact (kgllm.index.kge).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..artifacts import Manifest, read_manifest
from ..errors import UsageError


def run_index(inputs: list[Path], out: Path, config, *, pipeline_key: str | None = None) -> Manifest:
    from .facade import DEFAULT_SKIP_PREDICATES, KGIndex

    graphs, corpora = [], []
    for p in inputs:
        kind = read_manifest(p).kind
        if kind == "corpus" or kind.startswith("corpus."):
            corpora.append(p)
        elif kind == "graph" or kind.startswith("graph."):
            graphs.append(p)
        else:
            raise UsageError(f"{p}: index takes graph artifacts (and one corpus artifact), not {kind!r}")
    if config.corpus is not None:
        corpora.append(Path(config.corpus))
    if not graphs:
        raise UsageError("index: give at least one graph artifact")
    if len(corpora) > 1:
        raise UsageError(f"index: give at most one corpus artifact, got {', '.join(map(str, corpora))}")
    settings = {
        "seed": config.seed,
        "skip_predicates": config.skip_predicates if config.skip_predicates is not None else DEFAULT_SKIP_PREDICATES,
        "path_exclude": list(config.path_exclude),
        "vector": dataclasses.asdict(config.vector),
        "linker": dataclasses.asdict(config.linker),
    }
    idx = KGIndex.build(graphs, corpora[0] if corpora else None, settings)
    ins = graphs + ([corpora[0]] if corpora and corpora[0] not in inputs else [])
    return idx.save(out, config=config, inputs=list(inputs) + [c for c in ins if c not in inputs],
                    pipeline_key=pipeline_key)


def run_embed(inputs: list[Path], out: Path, config, *, pipeline_key: str | None = None) -> Manifest:
    from .kge import train_on_graph

    return train_on_graph(inputs[0], out, config, pipeline_key=pipeline_key)
