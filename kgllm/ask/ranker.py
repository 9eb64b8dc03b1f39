"""The candidate-query ranker: how well a question matches a candidate query's verbalization.

Takes: a question with its entity and literal mentions masked (:func:`mask_question`: "What movies does it
play in?") and the entity-free texts of candidate queries (kgllm.ask.candidates.describe: "film whose
starring is it").
Makes: a cosine similarity per candidate from a sentence-transformers bi-encoder. Zero-shot it is the index's
packaged encoder; ``kgllm train ranker`` fine-tunes that encoder on question/query pairs (LC-QuAD 1.0, QALD-9
train, questions generated from the user's graph) and ``--ranker DIR`` uses the result.

A bi-encoder rather than a cross-encoder: candidate texts are entity-free, so their vectors are computed once
per distinct text and cached across questions; a question costs one encoding plus a matrix product, which
keeps hybrid retrieval within its latency budget on millions of triples.
"""

from __future__ import annotations

import re

import numpy as np

from ..index.vector import Encoder
from .relations import one_thread

MASK = "it"


def mask_question(text: str, spans: list[tuple[int, int]]) -> str:
    """The question with each (start, end) span replaced by :data:`MASK` (overlaps merged)."""
    out, pos = [], 0
    for a, b in sorted(spans):
        if a < pos:
            a = pos
        if a >= b:
            continue
        out.append(text[pos:a])
        out.append(MASK)
        pos = b
    out.append(text[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


class Ranker:
    """Cosine similarity between a masked question and candidate texts, with a cache of text vectors."""

    def __init__(self, encoder, name: str = "zero-shot"):
        self.encoder = encoder
        self.name = name
        self._vec: dict[str, np.ndarray] = {}
        # Masked questions, for the current question only: it is scored several times (each candidate
        # group, the superlative's properties) with the same masked text.
        self._qvec: dict[str, np.ndarray] = {}

    def new_question(self) -> None:
        self._qvec = {}

    @classmethod
    def from_dir(cls, path) -> Ranker:
        return cls(Encoder(str(path)), name=str(path))

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        todo = sorted({t for t in texts if t not in self._vec})
        with one_thread():
            if todo:
                for t, v in zip(todo, self.encoder.encode(todo), strict=True):
                    self._vec[t] = v
            q = self._qvec.get(question)
            if q is None:
                q = self._qvec[question] = self.encoder.encode([question])[0]
        m = np.stack([self._vec[t] for t in texts])
        return m @ q
