"""Corpus stage on real data: the DBpedia sample graph plus a hand-copied WordNet 3.0 subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_corpus_wordnet_data import write_wordnet_graph

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.rdf import DBR, KGWN, GraphWriter, iter_graph, triple_id

SPLITS = ("train", "validation", "test")


def rows(corpus: Path, part: str, splits=SPLITS) -> list[dict]:
    out = []
    for s in splits:
        with open(corpus / part / f"{s}.jsonl", encoding="utf-8") as f:
            out += [json.loads(line) for line in f]
    return out


@pytest.fixture(scope="module")
def wordnet_graph(tmp_path_factory) -> Path:
    return write_wordnet_graph(tmp_path_factory.mktemp("wn") / "graph")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, dbpedia_graph, wordnet_graph, dbpedia_ontology_owl) -> Path:
    from kgllm.registry import run_stage

    out = tmp_path_factory.mktemp("corpus") / "corpus"
    run_stage("corpus", [dbpedia_graph, wordnet_graph], out, {"ontology": [dbpedia_ontology_owl]})
    return out


@pytest.fixture(scope="module")
def graph_triples(dbpedia_graph, wordnet_graph) -> set[tuple[str, str, str]]:
    return set(iter_graph([dbpedia_graph, wordnet_graph]))


@pytest.fixture(scope="module")
def graph_ids(graph_triples) -> set[str]:
    return {triple_id(*t) for t in graph_triples}


def test_manifest_accounts_for_every_triple(corpus, graph_triples):
    man = verify_artifact(corpus)
    assert man.kind == "corpus"
    c = man.counts
    assert c["triples"] == len(graph_triples)
    assert sum(c["triples_by_role"].values()) == c["triples"]
    assert c["triples_in_documents"] + sum(c["triples_not_in_documents"].values()) == c["triples"]
    for part in ("pretrain", "sft", "dpo"):
        removed = c[f"{part}_exact_duplicates"] + c[f"{part}_near_duplicates"]
        split_total = sum(c[f"{part}_{s}"] for s in SPLITS)
        assert c[f"{part}_rows"] - removed == split_total + read_leak_removed(corpus, part)
    assert c["pretrain_rows"] >= 100 and c["sft_rows"] > 500 and c["dpo_rows"] > 200


def read_leak_removed(corpus: Path, part: str) -> int:
    rep = json.loads((corpus / "leakage.json").read_text())
    return sum(rep["removed"][k].get(part, 0) for k in ("triple_overlap", "near_duplicate", "held_out_cross_split"))


def test_spans_point_at_the_right_characters_and_iris(corpus):
    docs = rows(corpus, "pretrain")
    by_entity = {d["entity"]: d for d in docs}
    n = 0
    for d in docs:
        for sp in d["spans"]:
            assert d["text"][sp["start"]:sp["end"]] == sp["surface"], (d["id"], sp)
            n += 1
        assert any(sp["iri"] == d["entity"] for sp in d["spans"]), d["text"][:80]
    assert n > 500
    ba = by_entity.get(DBR + "British_Airways")
    if ba is None:  # it may sit in any split, but it must exist somewhere
        pytest.fail("no document for British Airways")
    heathrow = [sp for sp in ba["spans"] if sp["iri"] == DBR + "Heathrow_Airport"]
    assert heathrow and all(ba["text"][s["start"]:s["end"]] == "Heathrow Airport" for s in heathrow)
    company = [sp for sp in ba["spans"] if sp["iri"] == DBR + "British_Airways" and sp.get("ref") != "pronoun"]
    assert "http://dbpedia.org/ontology/Company" in company[0]["types"]
    dog = by_entity[KGWN + "02084071-n"]
    assert dog["text"].startswith("dog (noun): a member of the genus Canis")
    assert {"Canis familiaris", "domestic dog", "canine", "puppy"} <= {s["surface"] for s in dog["spans"]}


def test_every_sentence_expresses_existing_triples(corpus, graph_ids):
    for d in rows(corpus, "pretrain"):
        assert d["sentences"], d["id"]
        for s in d["sentences"]:
            assert s["triple_ids"] and set(s["triple_ids"]) <= graph_ids, (d["id"], s)
            assert 0 <= s["start"] < s["end"] <= len(d["text"])
    ids = set()
    with open(corpus / "triples.jsonl", encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            assert t["id"] == triple_id(t["s"], t["p"], t["o"]) and t["text"]
            ids.add(t["id"])
    assert ids <= graph_ids


def test_sft_rows_are_grounded(corpus, graph_ids):
    sft = rows(corpus, "sft")
    assert {"one_hop", "two_hop", "list", "definition"} <= {r["type"] for r in sft}
    for r in sft:
        assert set(r["triple_ids"]) <= graph_ids and r["triple_ids"], r
        assert r["answers"] and r["prompt"].strip() and r["completion"].strip()
    q = [r for r in sft if r["type"] == "one_hop" and r["entity"] == DBR + "British_Airways"
         and "hub" in r["prompt"].lower()]
    if q:  # when British Airways is in the corpus, its hubs are answered from the graph
        assert DBR + "Heathrow_Airport" in q[0]["answers"] and "Heathrow Airport" in q[0]["completion"]
    defs = [r for r in sft if r["type"] == "definition" and r["entity"] == KGWN + "01322604-n"]
    assert defs and defs[0]["answers"] == ["a young dog"]


def test_rejected_dpo_answers_are_false_in_the_graph(corpus, graph_triples, graph_ids):
    dpo = rows(corpus, "dpo")
    assert len(dpo) > 200
    multi = 0
    subj_pred = {}
    for s, p, o in graph_triples:
        subj_pred.setdefault((s, p), set()).add(o)
    for r in dpo:
        s, p, o = r["rejected_triple"]
        assert (s, p, o) not in graph_triples, r
        assert set(r["triple_ids"]) <= graph_ids
        assert r["chosen"] != r["rejected"]
        multi += len(subj_pred[(s, p)]) > 1
    assert multi > 10  # multi-valued predicates are covered, and still false


def test_leakage_report_is_empty(corpus):
    rep = json.loads((corpus / "leakage.json").read_text())
    assert rep["leaks"] == {"triple_ids": [], "near_duplicates": []}
    held = {t for part in ("pretrain", "sft", "dpo") for r in rows(corpus, part, ("validation", "test"))
            for t in (r.get("triple_ids") or [x for s in r["sentences"] for x in s["triple_ids"]])}
    train = {t for part in ("pretrain", "sft", "dpo") for r in rows(corpus, part, ("train",))
             for t in (r.get("triple_ids") or [x for s in r["sentences"] for x in s["triple_ids"]])}
    assert held and train and not held & train
    # entity split: an entity lives in one split only
    where = {}
    for s in SPLITS:
        for part in ("pretrain", "sft", "dpo"):
            for r in rows(corpus, part, (s,)):
                assert where.setdefault(r["entity"], s) == s


def test_markup_and_conll_exports(corpus):
    markup = rows(corpus, "markup")
    assert any("[British Airways](dbr:British_Airways)" in m["text"] for m in markup)
    conll = "".join((corpus / "ner" / f"{s}.conll").read_text() for s in SPLITS)
    assert "British\tB-Airline" in conll or "British\tB-Company" in conll
    assert "Airways\tI-" in conll and "-DOCSTART-" in conll


def test_planted_duplicates_are_removed(tmp_path, dbpedia_graph):
    """Copies of an entity under new IRIs: an exact copy and a copy with one fact changed."""
    from kgllm.registry import run_stage

    src = DBR + "British_Airways"
    ba = [t for t in iter_graph(dbpedia_graph) if t[0] == f"<{src}>"]
    assert len(ba) > 20
    with GraphWriter(tmp_path / "g") as g:
        with g.shard({"source": "test"}) as add:
            for s, p, o in ba:
                add(s, p, o)
                add(f"<{src}_copy>", p, o)  # same name, same facts: an exact duplicate document
                if "Gatwick" not in o:
                    add(f"<{src}_near>", p, o)  # one hub fewer: a near duplicate
    man = run_stage("corpus", [tmp_path / "g"], tmp_path / "c", {"split": {"test": 0.0, "validation": 0.0}})
    assert man.counts["pretrain_exact_duplicates"] == 1
    assert man.counts["pretrain_near_duplicates"] == 1
    assert man.counts["pretrain_train"] == 1
    removed = json.loads((tmp_path / "c" / "dedup.json").read_text())["pretrain"]
    assert {r["kind"] for r in removed} == {"exact", "near"}


def test_cli_corpus(tmp_path, wordnet_graph, capsys):
    from kgllm.cli import main

    rc = main(["corpus", str(wordnet_graph), "--out", str(tmp_path / "c"), "--set", "sft_phrasings=1"])
    assert rc == 0
    assert "corpus artifact" in capsys.readouterr().out
    man = read_manifest(tmp_path / "c", "corpus")
    assert man.config["sft_phrasings"] == 1 and man.counts["documents"] == 8


@pytest.mark.slow
def test_corpus_on_pulled_wordnet(tmp_path):
    """The real pull.wordnet stage (dog.n.01 and its neighbourhood) through the corpus stage."""
    from kgllm.registry import run_stage

    graph = tmp_path / "wn"
    run_stage("pull.wordnet", [], graph, {"roots": ["dog.n.01"]})
    triples = set(iter_graph(graph))
    ids = {triple_id(*t) for t in triples}
    man = run_stage("corpus", [graph], tmp_path / "c", {})
    c = man.counts
    assert c["triples"] == len(triples) and sum(c["triples_by_role"].values()) == c["triples"]
    docs = {d["entity"]: d for d in rows(tmp_path / "c", "pretrain")}
    dog = docs[KGWN + "02084071-n"]
    assert dog["text"].startswith("dog (noun): a member of the genus Canis")
    assert "is a kind of canine" in dog["text"]
    for d in docs.values():
        for sp in d["spans"]:
            assert d["text"][sp["start"]:sp["end"]] == sp["surface"]
        assert all(set(s["triple_ids"]) <= ids for s in d["sentences"])
    dpo = rows(tmp_path / "c", "dpo")
    assert dpo and all(tuple(r["rejected_triple"]) not in triples for r in dpo)
    sft = rows(tmp_path / "c", "sft")
    assert {"definition", "one_hop", "list", "two_hop"} <= {r["type"] for r in sft}
    assert json.loads((tmp_path / "c" / "leakage.json").read_text())["leaks"] == {"triple_ids": [],
                                                                                 "near_duplicates": []}
