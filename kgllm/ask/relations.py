"""Relation matching: which predicates a question's words ask for.

Takes: the relation words of a question (kgllm.ask.question) and predicate terms of the graph, with the
index (labels, encoder).
Makes: a score in [0, ~1.25] per predicate and the question words it used, from

1. **descriptions** of each predicate: its label in the graph (``rdfs:label`` or the split local name,
   ``dbo:hubAirport`` -> "hub airport"), the corpus stage's curated verbalization templates
   (``kgllm/corpus/data/lexicon.json``: label, sentence, question phrasings such as "Where was
   {s} born?"), and the few WordNet phrasings of kgllm.ask.phrasings ("a kind of" -> ``wn:hypernym``);
2. **lexical overlap**: a description's content words found among the question's (both reduced to WordNet
   base forms, "founded" ~ "found"); score = the share of the description's words matched, plus 0.25 when
   the description's wh-word is the question's ("When was X born" picks the birth date, "Where" the place),
   plus 0.05 per question word explained;
3. **embeddings** (fallback for words no description shares): cosine similarity between the question's
   relation words and each description, by the index's sentence encoder.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import numpy as np

from .phrasings import curated_phrasings
from .question import WH_WORDS, Token, content_tokens

WH_BONUS = 0.25
# Among equally covered descriptions, the one explaining more question words wins ("founding year" over
# "founded" for "the founding year of X").
USED_BONUS = 0.05
@contextlib.contextmanager
def one_thread():
    """Encode one short question on one CPU thread: intra-op threads only add synchronisation for a single
    sentence, and on a busy machine they made the encoding 20x slower (2 s instead of 0.1 s, measured).
    torch's thread count is per calling thread (OpenMP), so this is safe from several threads at once."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass(frozen=True)
class Description:
    text: str
    tokens: tuple[frozenset[str], ...]   # content words (forms) of the phrasing, {s}/{o} removed
    wh: str | None
    weight: float = 1.0                  # < 1 for statements ("{s} is a subsidiary of {o}.") vs questions/labels


@dataclass
class RelMatch:
    predicate: str          # N-Triples IRI term
    score: float
    used: frozenset[int]    # indices of the question's relation tokens it consumed
    how: str                # lexical | embedding


def _describe(text: str) -> Description:
    t = text.replace("{s}", " ").replace("{o}", " ")
    toks = tuple(tok.forms for tok in content_tokens(t))
    words = t.lower().split()
    wh = next((w.strip("?,.") for w in words if w.strip("?,.") in WH_WORDS), None)
    # A statement verbalizes the fact from the subject's side ("{s} is a subsidiary of {o}." for
    # dbo:parentCompany), so its words can name the inverse relation: it loses ties to labels and questions.
    weight = 0.9 if "{o}" in text and not text.rstrip().endswith("?") else 1.0
    return Description(text, toks, wh, weight)


class RelationMatcher:
    """Scores predicates against a question's relation words; caches descriptions and their embeddings."""

    def __init__(self, index, min_embedding: float = 0.45):
        self.index = index
        self.min_embedding = min_embedding
        self._desc: dict[str, list[Description]] = {}
        self._emb: dict[str, np.ndarray] = {}
        self._qvec: dict[str, np.ndarray] = {}  # encoded relation words (question text minus a mention)

    def new_question(self) -> None:
        """Forget the encoded relation words of the previous question (they are cached within one)."""
        self._qvec.clear()

    def descriptions(self, pred: str) -> list[Description]:
        d = self._desc.get(pred)
        if d is None:
            iri = pred[1:-1]
            texts = [self.index.label(pred)] + curated_phrasings().get(iri, [])
            seen, d = set(), []
            for t in texts:
                if t and t not in seen:
                    seen.add(t)
                    desc = _describe(t)
                    if desc.tokens:
                        d.append(desc)
            self._desc[pred] = d
        return d

    def lexical(self, pred: str, tokens: list[Token], wh: str | None, exclude: frozenset[int] = frozenset()
                ) -> RelMatch:
        """Best description of ``pred`` by word overlap with the question tokens not in ``exclude``."""
        best = RelMatch(pred, 0.0, frozenset(), "lexical")
        for d in self.descriptions(pred):
            used, hit = set(), 0
            for forms in d.tokens:
                js = [j for j, t in enumerate(tokens) if j not in exclude and t.forms & forms]
                if js:
                    hit += 1
                    used.update(js)
            if not hit:
                continue
            score = d.weight * hit / len(d.tokens) + (WH_BONUS if d.wh and d.wh == wh else 0.0) \
                + USED_BONUS * len(used)
            if score > best.score or (score == best.score and len(used) > len(best.used)):
                best = RelMatch(pred, score, frozenset(used), "lexical")
        return best

    def embedding(self, text: str, preds: list[str]) -> dict[str, float]:
        """Cosine similarity of ``text`` to each predicate's closest description (sentence encoder)."""
        if not text.strip() or not preds:
            return {}
        with one_thread():
            return self._embedding(text, preds)

    def _embedding(self, text: str, preds: list[str]) -> dict[str, float]:
        enc = self.index.encoder
        todo = [p for p in preds if p not in self._emb]
        if todo:
            texts, owners = [], []
            for p in todo:
                for d in self.descriptions(p) or [_describe(self.index.label(p))]:
                    texts.append(d.text.replace("{s}", "it").replace("{o}", "it"))
                    owners.append(p)
            vecs = enc.encode(texts) if texts else np.zeros((0, 1), np.float32)
            for p in todo:
                rows = [i for i, o in enumerate(owners) if o == p]
                self._emb[p] = vecs[rows] if rows else np.zeros((0, vecs.shape[1] if vecs.ndim == 2 else 1),
                                                                np.float32)
        q = self._qvec.get(text)
        if q is None:
            # The top candidates of one mention share the question's remaining words: encode them once.
            q = self._qvec[text] = enc.encode([text])[0]
        out = {}
        for p in preds:
            m = self._emb[p]
            out[p] = float((m @ q).max()) if len(m) else 0.0
        return out
