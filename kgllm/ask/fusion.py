"""Fusion of ranked candidate lists (pure functions, no state, no heavy imports).

Takes: several rankings of the same kind of item (triple ids here), each best first, optionally with scores.
Makes: one ranking ``[(item, fused score)]``, best first, ties broken by the item (deterministic).

Two methods, as in txtai and most hybrid-search engines:

* :func:`rrf` **reciprocal rank fusion** (Cormack et al., 2009): ``score(d) = sum_i w_i / (k + rank_i(d))``.
  Uses ranks only, so it needs no calibration between retrievers whose scores live on different scales
  (cosine similarity vs PageRank mass vs an exact SPARQL match). **Use it by default**, and whenever the
  retrievers' scores are not comparable or a retriever returns no scores at all.
* :func:`convex` **convex combination** of min-max normalised scores: ``score(d) = sum_i w_i * norm_i(d)``.
  Keeps the *margins* between candidates (a retriever that is very sure of its first hit dominates), which
  rank fusion throws away. **Use it when the scores are meaningful and roughly calibrated** and you can tune
  the weights on held-out questions (Bruch et al., 2023 find it beats RRF when tuned, and loses when not).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(rankings: Sequence[Sequence[K]], k: int = 60, weights: Sequence[float] | None = None
        ) -> list[tuple[K, float]]:
    """Reciprocal rank fusion of rankings (each a list of items, best first; duplicates keep their first rank).

    ``k`` damps the weight of the top ranks (60 is the value of the original paper); ``weights`` scale each
    ranking's contribution (default 1 each).
    """
    if k <= 0:
        raise ValueError(f"rrf: k must be positive, got {k}")
    w = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(w) != len(rankings):
        raise ValueError(f"rrf: {len(w)} weights for {len(rankings)} rankings")
    acc: dict[K, float] = {}
    for ranking, wi in zip(rankings, w, strict=True):
        seen = set()
        for rank, item in enumerate(ranking, 1):
            if item in seen:
                continue
            seen.add(item)
            acc[item] = acc.get(item, 0.0) + wi / (k + rank)
    return sorted(acc.items(), key=lambda kv: (-kv[1], str(kv[0])))


def convex(scored: Sequence[Sequence[tuple[K, float]]], weights: Sequence[float] | None = None
           ) -> list[tuple[K, float]]:
    """Convex combination of min-max normalised scores (each list ``[(item, score)]``, higher is better).

    An item missing from a list gets 0 from it. A list whose scores are all equal normalises to 1 for each of
    its items. ``weights`` default to equal weights and are renormalised to sum to 1.
    """
    w = list(weights) if weights is not None else [1.0] * len(scored)
    if len(w) != len(scored):
        raise ValueError(f"convex: {len(w)} weights for {len(scored)} score lists")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"convex: weights must be non-negative and not all 0, got {w}")
    total = sum(w)
    acc: dict[K, float] = {}
    for lst, wi in zip(scored, w, strict=True):
        if not lst:
            continue
        best: dict[K, float] = {}
        for item, s in lst:
            if item not in best or s > best[item]:
                best[item] = float(s)
        lo, hi = min(best.values()), max(best.values())
        for item, s in best.items():
            norm = 1.0 if hi == lo else (s - lo) / (hi - lo)
            acc[item] = acc.get(item, 0.0) + wi / total * norm
        for item in best:
            acc.setdefault(item, 0.0)
    return sorted(acc.items(), key=lambda kv: (-kv[1], str(kv[0])))


FUSIONS = {"rrf": rrf, "convex": convex}
