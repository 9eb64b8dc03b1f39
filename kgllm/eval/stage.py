"""The stage of the eval package: ``eval.qa`` (QA evaluation of an index, written as an artifact).

Takes: nothing at import (the stage registry reads :data:`STAGES`).
Makes: the config dataclass (:class:`QAEvalConfig`, every default stated here) and the registration. The
run function, :func:`kgllm.eval.qa.run_eval_qa`, loads the index and the encoder and is imported only when
the stage runs. ``kgllm ask`` and ``kgllm serve`` answer questions interactively and write no artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..registry import Stage


@dataclass
class QAEvalConfig:
    questions: Path | None = None       # question file (JSONL); required
    retrievers: list[Literal["vector", "graph", "hybrid"]] = field(
        default_factory=lambda: ["vector", "graph", "hybrid"])
    model: str | None = None            # local model to word answers (name or checkpoint dir); None: extractive
    sparql: str = "store"               # store (embedded, from the index) | off | an endpoint URL
    ranker: Path | None = None          # question/query ranker (kgllm train ranker); None: zero-shot
    decoding: Literal["auto", "constrained", "free"] = "auto"   # with a model: how its answer is decoded
    limit: int = 0                      # first N questions only (0: all)
    # Questions that received feedback (JSONL with a "question" per line, e.g. the recorded feedback file):
    # metrics are reported for them and for the other (held-out) questions separately.
    feedback_questions: Path | None = None

    def __post_init__(self):
        if not self.retrievers:
            raise ValueError("retrievers must name at least one of vector, graph, hybrid")
        if self.limit < 0:
            raise ValueError(f"limit must be 0 (all) or more, got {self.limit}")
        if not self.sparql.strip():
            raise ValueError("sparql must be store, off or an endpoint URL")


STAGES = [
    Stage("eval.qa", QAEvalConfig, "kgllm.eval.qa:run_eval_qa", "eval.qa",
          help="QA evaluation of an index: Hits@1, EM, QALD F1, citation precision, latency per retriever "
               "(inputs: index [, model artifact that words the answers])",
          min_inputs=1, max_inputs=2),
]
