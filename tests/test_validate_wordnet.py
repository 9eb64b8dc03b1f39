"""Validate real WordNet (a `pull.wordnet` subset) against the shipped WordNet ontology and shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgllm.rdf import KGWN, WN, GraphWriter, iter_graph
from kgllm.registry import run_stage

ROOT = Path(__file__).resolve().parent.parent
WN_ONTOLOGY = ROOT / "ontologies" / "wordnet" / "wn.ttl"
WN_SHAPES = ROOT / "ontologies" / "shapes" / "wordnet.ttl"
ROOTS = ["dog.n.01", "good.a.01", "slowly.r.01", "teach.v.01", "physicist.n.01"]


@pytest.fixture(scope="module")
def wn_subset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wn") / "subset"
    run_stage("pull.wordnet", [], out, {"roots": ROOTS})
    return out


@pytest.mark.slow
def test_wordnet_subset_is_clean_and_conforms(wn_subset, tmp_path):
    out = tmp_path / "clean"
    man = run_stage("validate", [wn_subset], out, {"ontology": [WN_ONTOLOGY], "shapes": [WN_SHAPES]})
    rep = json.loads((out / "report.json").read_text())
    # The ontology written for the vocabulary is consistent, with no unsatisfiable class (real HermiT).
    assert rep["reasoning"]["status"] == "consistent" and rep["reasoning"]["unsatisfiable_classes"] == []
    assert rep["clean"], rep["problems"]
    assert {ch["name"]: ch["violations"] for ch in rep["checks"] if ch["violations"]} == {}
    assert man.counts["kept"] == man.counts["input_triples"] > 1000
    s = rep["shacl"]
    assert s["status"] == "conforms"
    shapes = s["by_shape"]
    for name in ("SynsetShape", "LexicalEntryShape", "LexicalSenseShape"):
        (full,) = [k for k in shapes if k.endswith(name + ">")]
        assert shapes[full]["focus_nodes"] == shapes[full]["conforming"] > 10


def test_wordnet_hypernym_cycle_and_bad_pos_are_caught(wn_subset, tmp_path):
    triples = list(iter_graph(wn_subset))
    dog, canine = f"<{KGWN}02084071-n>", f"<{KGWN}02083346-n>"
    assert (dog, f"<{WN}hypernym>", canine) in set(triples)
    bad = [(canine, f"<{WN}hypernym>", dog),                                   # a cycle
           (dog, f"<{WN}partOfSpeech>", '"noun"'),                            # literal for an object property
           (f"<{KGWN}sense/nothing>", f"<{WN}hypernym>", dog)]  # untyped subject: not judged (open world)
    src = tmp_path / "bad"
    with GraphWriter(src, config={}) as g:
        g.add_all(triples + bad, {"source": "test"})
    out = tmp_path / "out"
    man = run_stage("validate", [src], out, {"ontology": [WN_ONTOLOGY], "reasoner": "none"})
    rows = [json.loads(x) for x in (out / "quarantine" / "quarantine.jsonl").read_text().splitlines()]
    got = {(r["s"], r["p"], r["o"]): r["checks"] for r in rows}
    assert got[(canine, f"<{WN}hypernym>", dog)] == ["hierarchy_cycle"]
    assert got[(dog, f"<{WN}hypernym>", canine)] == ["hierarchy_cycle"]
    assert got[(dog, f"<{WN}partOfSpeech>", '"noun"')] == ["property_kind"]
    assert len(rows) == 3 and man.counts["quarantined"] == 3
    assert man.counts["kept"] + 3 == len(triples) + len(bad)
