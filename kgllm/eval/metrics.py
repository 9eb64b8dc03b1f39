"""Answer metrics shared by evaluation and rewards: SQuAD-style normalisation, exact match, whole-word
containment and token F1. A leaf module: it imports nothing from kgllm, so the train stage (its
KG-verifiable reward, :mod:`kgllm.train.kg_reward`) and the eval stage use the same definitions.

Takes: predicted and reference answer strings.
Makes: normalised strings, booleans and F1 scores in [0, 1].
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no accents, punctuation or articles, single spaces."""
    t = unicodedata.normalize("NFKD", text.lower())
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = "".join(" " if ch in string.punctuation else ch for ch in t)
    return " ".join(_ARTICLES.sub(" ", t).split())


def contains_words(hay: str, needle: str) -> bool:
    """``needle`` occurs in ``hay`` as whole words (both already normalised); an empty needle never does."""
    return bool(needle) and re.search(rf"(^| ){re.escape(needle)}( |$)", hay) is not None


def exact_match(pred: str, refs: list[str]) -> bool:
    """The normalised prediction equals a normalised reference."""
    p = normalize_answer(pred)
    return any(p == normalize_answer(r) for r in refs)


def token_f1(pred: str, ref: str) -> float:
    """Token-overlap F1 of the normalised strings (1.0 when both are empty)."""
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or common == 0:
        return float(p == r)
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)
