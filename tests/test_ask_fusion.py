"""Fusion functions (pure): reciprocal rank fusion and the convex combination of normalised scores."""

from __future__ import annotations

import pytest

from kgllm.ask.fusion import convex, rrf


def test_rrf_rewards_agreement_and_is_deterministic():
    fused = rrf([["a", "b", "c"], ["b", "a", "d"], ["b", "e"]], k=60)
    assert [x for x, _ in fused][:2] == ["b", "a"]
    assert fused[0][1] == pytest.approx(2 / 61 + 1 / 62)
    # Ties break by the item, so the order never depends on dict iteration.
    assert rrf([["y"], ["x"]]) == [("x", 1 / 61), ("y", 1 / 61)]
    # Weights scale one ranking's say; a duplicate keeps its first rank.
    assert rrf([["a", "b"], ["b", "a"]], weights=[2, 1])[0][0] == "a"
    assert rrf([["a", "a", "b"]]) == [("a", 1 / 61), ("b", 1 / 63)]
    with pytest.raises(ValueError):
        rrf([["a"]], k=0)


def test_convex_keeps_score_margins():
    vec = [("a", 0.91), ("b", 0.90), ("c", 0.10)]
    graph = [("c", 5.0), ("b", 4.9), ("a", 0.0)]
    # b is close to the top in both lists: convex fusion puts it first, RRF ties it with a and c.
    assert convex([vec, graph])[0][0] == "b"
    assert convex([vec, graph], weights=[1, 0])[0] == ("a", pytest.approx(1.0))
    assert convex([[("x", 3.0), ("y", 3.0)]]) == [("x", 1.0), ("y", 1.0)]
    assert convex([[], [("x", 1.0)]]) == [("x", pytest.approx(0.5))]
    with pytest.raises(ValueError):
        convex([vec], weights=[-1])
