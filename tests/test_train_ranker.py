"""train.ranker: SPARQL -> candidate shape, question masking, hard negatives, a tiny real training run.

The question/query pairs are written here, about a small made-up DBpedia-like world (lakes, books, presses,
towns); LC-QuAD and QALD are GPL / unlicensed and stay out of the repository. The encoder is the packaged
MiniLM, trained for two steps on CPU.
"""

from __future__ import annotations

import json

import pytest

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.errors import ConfigError, EmptyResultError, InputError
from kgllm.registry import run_stage
from kgllm.train.ranker import (
    Labels,
    Mapped,
    Skip,
    Vocabulary,
    build_pairs,
    fold_of,
    map_query,
    mask,
    negative_texts,
    ranking_accuracy,
)
from kgllm.train.stage import RankerConfig

ONT, RES = "http://example.org/ontology/", "http://example.org/resource/"
PREFIX = f"PREFIX ont: <{ONT}> PREFIX res: <{RES}> PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> "


def o(name: str) -> str:
    return f"<{ONT}{name}>"


def r(name: str) -> str:
    return f"<{RES}{name}>"


# Our own pairs: every shape, COUNT, ASK, and two queries no shape covers.
PAIRS = [
    ("Which river flows into Moon Lake?", f"SELECT ?x WHERE {{ <{RES}Moon_Lake_(Oregon)> ont:inflow ?x }}"),
    ("Which books did Ada Quill write?", "SELECT ?x WHERE { ?x ont:author res:Ada_Quill . ?x rdf:type ont:Book }"),
    ("How many books did Tern Press publish?",
     f"SELECT DISTINCT COUNT(?uri) WHERE {{ ?uri <{ONT}publisher> <{RES}Tern_Press> }}"),
    ("Who is the mayor of the birth place of Ada Quill?",
     "SELECT ?x WHERE { res:Ada_Quill ont:birthPlace ?m . ?m ont:mayor ?x }"),
    ("Which books by Ada Quill were published by Tern Press?",
     "SELECT ?x WHERE { ?x ont:author res:Ada_Quill . ?x ont:publisher res:Tern_Press . ?x a ont:Book }"),
    ("Which lighthouse has the code ZQX?", 'SELECT ?x WHERE { ?x ont:code "ZQX" }'),
    ("Give me all lighthouses.", "SELECT ?x WHERE { ?x a ont:Lighthouse }"),
    ("Was Port Wren the birth place of Ada Quill?", "ASK { res:Ada_Quill ont:birthPlace res:Port_Wren }"),
    ("Which towns near Moon Lake have a mayor?",
     f"SELECT ?x WHERE {{ ?x ont:nearLake <{RES}Moon_Lake_(Oregon)> . FILTER(?x != res:Port_Wren) }}"),
    ("Who wrote or published Grey Tides?",
     "SELECT ?x WHERE { { res:Grey_Tides ont:author ?x } UNION { res:Grey_Tides ont:publisher ?x } }"),
]


def write_questions(path, pairs=PAIRS):
    path.write_text("".join(json.dumps({"question": q, "query": PREFIX + s}) + "\n" for q, s in pairs),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("query, shape, preds, cls, topics, form", [
    ("SELECT ?x WHERE { res:Moon_Lake ont:inflow ?x }",
     "lookup", ((o("inflow"), "out"),), None, (r("Moon_Lake"),), "select"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill }", "inverse", ((o("author"), "in"),), None, (r("Ada_Quill"),),
     "select"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill . ?x a ont:Book }",
     "inverse", ((o("author"), "in"),), o("Book"), (r("Ada_Quill"),), "select"),
    # two_hop: the four direction combinations
    ("SELECT ?x WHERE { res:Ada_Quill ont:birthPlace ?m . ?m ont:mayor ?x }",
     "two_hop", ((o("birthPlace"), "out"), (o("mayor"), "out")), None, (r("Ada_Quill"),), "select"),
    ("SELECT ?x WHERE { ?m ont:author res:Ada_Quill . ?m ont:publisher ?x }",
     "two_hop", ((o("author"), "in"), (o("publisher"), "out")), None, (r("Ada_Quill"),), "select"),
    ("SELECT ?x WHERE { res:Grey_Tides ont:author ?m . ?x ont:influencedBy ?m }",
     "two_hop", ((o("author"), "out"), (o("influencedBy"), "in")), None, (r("Grey_Tides"),), "select"),
    ("SELECT ?x WHERE { ?m ont:publisher res:Tern_Press . ?x ont:sequel ?m . ?x a ont:Book }",
     "two_hop", ((o("publisher"), "in"), (o("sequel"), "in")), None, (r("Tern_Press"),), "select"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill . ?x ont:publisher res:Tern_Press . ?x a ont:Book }",
     "intersection", ((o("author"), "in"), (o("publisher"), "in")), o("Book"), (r("Ada_Quill"), r("Tern_Press")),
     "select"),
    ("SELECT ?x WHERE { res:Ada_Quill ont:birthPlace ?x . res:Tern_Press ont:location ?x }",
     "intersection", ((o("birthPlace"), "out"), (o("location"), "out")), None, (r("Ada_Quill"), r("Tern_Press")),
     "select"),
    ('SELECT ?x WHERE { ?x ont:code "ZQX" }', "literal", ((o("code"), "in"),), None, ('"ZQX"',), "select"),
    ("SELECT ?x WHERE { ?x a ont:Lighthouse }", "class", (), o("Lighthouse"), (), "select"),
    # COUNT keeps the pattern, in SPARQL 1.1 and in Virtuoso's (LC-QuAD's) alias-less form
    ("SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x ont:publisher res:Tern_Press }",
     "inverse", ((o("publisher"), "in"),), None, (r("Tern_Press"),), "count"),
    ("SELECT DISTINCT COUNT(?uri) WHERE { ?uri ont:publisher res:Tern_Press }",
     "inverse", ((o("publisher"), "in"),), None, (r("Tern_Press"),), "count"),
    # ASK { E1 p E2 }: the lookup from E1
    ("ASK WHERE { res:Ada_Quill ont:birthPlace res:Port_Wren }",
     "lookup", ((o("birthPlace"), "out"),), None, (r("Ada_Quill"), r("Port_Wren")), "ask"),
    # ORDER BY drops the triple that binds the ordering value
    ("SELECT ?x WHERE { ?x a ont:Lighthouse . ?x ont:height ?h } ORDER BY DESC(?h) LIMIT 1",
     "class", (), o("Lighthouse"), (), "order"),
])
def test_sparql_maps_onto_candidate_shapes(query, shape, preds, cls, topics, form):
    assert map_query(PREFIX + query) == Mapped(shape, preds, cls, topics, form)


def test_full_iris_without_prefixes():
    q = f"SELECT DISTINCT ?uri WHERE {{ <{RES}Ada_Quill> <{ONT}birthPlace> ?uri }}"
    assert map_query(q).preds == ((o("birthPlace"), "out"),)


@pytest.mark.parametrize("query, reason", [
    ("SELECT ?x WHERE { ?x ont:nearLake res:Moon_Lake . FILTER(?x != res:Port_Wren) }", "filter"),
    ("SELECT ?x WHERE { { res:Grey_Tides ont:author ?x } UNION { res:Grey_Tides ont:publisher ?x } }", "union"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill . OPTIONAL { ?x ont:sequel ?s } }", "optional"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill . ?x ont:publisher ?m . ?m ont:location ?l }",
     "three_or_more_triples"),
    ("SELECT ?x WHERE { ?x ont:author res:Ada_Quill", "parse_error"),
    ("ASK { res:Grey_Tides a ont:Book }", "type_check"),
    ("SELECT (MAX(?h) AS ?m) WHERE { ?x ont:height ?h }", "aggregate_max"),
    ("", "no_query"),
])
def test_unmapped_queries_are_skipped_with_a_reason(query, reason):
    with pytest.raises(Skip, match=reason):
        map_query(PREFIX + query if query else query)


def test_masking_finds_entity_names_and_literals():
    q, spans = mask("Which river flows into moon lake?", [r("Moon_Lake_(Oregon)")])
    assert q == "Which river flows into it?" and spans[r("Moon_Lake_(Oregon)")] == (23, 32)
    assert mask("Which lighthouse has the code ZQX?", ['"ZQX"'])[0] == "Which lighthouse has the code it?"
    assert mask("Was Port Wren the birth place of Ada Quill?", [r("Ada_Quill"), r("Port_Wren")])[0] == \
        "Was it the birth place of it?"
    assert mask("Which books did Ada Quil write?", [r("Ada_Quill")])[0] == "Which books did it write?"  # a typo
    assert mask("Which town is near Burbank?", [r("Burbank,_Oregon")])[0] == "Which town is near it?"
    # unmatched: the question stays as it is
    q, spans = mask("Which river flows into the lake?", [r("Moon_Lake_(Oregon)")])
    assert q == "Which river flows into the lake?" and spans == {r("Moon_Lake_(Oregon)"): None}


def test_negatives_are_near_misses_and_never_the_positive(tmp_path):
    ps = build_pairs(RankerConfig(questions=[write_questions(tmp_path / "q.jsonl")], negatives=4))
    assert ps.pairs
    for p in ps.pairs:
        assert len(p.negatives) == 4 and p.positive not in p.negatives, p
    by_q = {p.question: p for p in ps.pairs}
    p = by_q["Which books did Ada Quill write?"]
    assert (p.anchor, p.positive) == ("Which books did it write?", "Book whose author is it")
    assert "the author of it" in p.negatives or "thing whose author is it" in p.negatives  # flipped / class dropped
    assert by_q["Was Port Wren the birth place of Ada Quill?"].positive == "the birth place of it"
    assert by_q["Was Port Wren the birth place of Ada Quill?"].anchor == "Was it the birth place of it?"

    # A vocabulary of one predicate and one class still gives negatives that differ from the positive.
    label = Labels()
    m = Mapped("inverse", ((o("author"), "in"),), o("Book"), (r("Ada_Quill"),), "select")
    vocab = Vocabulary([m], label)
    import random

    negs = negative_texts(m, label, vocab, random.Random(0), 5)
    assert negs and "Book whose author is it" not in negs and len(set(negs)) == len(negs)


def test_ontology_labels_and_folds(tmp_path):
    ont = tmp_path / "ont.ttl"
    ont.write_text(f'<{ONT}birthPlace> <http://www.w3.org/2000/01/rdf-schema#label> "place of birth"@en , '
                   f'"Geburtsort"@de .\n', encoding="utf-8")
    label = Labels(ont)
    assert label(o("birthPlace")) == "place of birth" and label(o("nearLake")) == "near lake"

    qald = tmp_path / "qald.json"
    questions = [{"id": str(i), "question": [{"language": "de", "string": "x"}, {"language": "en", "string": q}],
                  "query": {"sparql": PREFIX + s}} for i, (q, s) in enumerate(PAIRS)]
    qald.write_text(json.dumps({"dataset": {"id": "mine"}, "questions": questions}), encoding="utf-8")
    full = build_pairs(RankerConfig(qald=qald)).counts
    held = build_pairs(RankerConfig(qald=qald, exclude_ids=["0", "1"])).counts
    assert full["records"] == held["records"] == len(PAIRS)
    assert held["held_out"] == 2 and held["pairs"] == full["pairs"] - 2
    fold = build_pairs(RankerConfig(qald=qald, folds=3, fold=1)).counts
    assert fold["held_out"] == sum(fold_of(str(i), 3) == 1 for i in range(len(PAIRS)))
    with pytest.raises(ConfigError, match="fold"):
        run_stage("train.ranker", [], tmp_path / "x", {"qald": str(qald), "folds": 3, "fold": 3})


def test_tiny_training_run_writes_a_loadable_ranker(tmp_path):
    from kgllm.ask.ranker import Ranker

    qs = write_questions(tmp_path / "q.jsonl")
    out = tmp_path / "ranker"
    man = run_stage("train.ranker", [], out, {"questions": [str(qs)], "epochs": 1, "batch_size": 4,
                                              "negatives": 2, "max_steps": 2, "seed": 1})
    assert man.kind == "train.ranker"
    verify_artifact(out)
    c = read_manifest(out).counts
    assert c["records"] == len(PAIRS) == c["pairs"] + c["skipped"] + c["held_out"] + c["over_max_pairs"]
    assert c["pairs"] == 8 and sum(c["pairs_by_source"].values()) == sum(c["pairs_by_shape"].values()) == 8
    assert c["skipped"] == sum(c["skipped_by_reason"].values()) == 2
    assert c["skipped_by_reason"] == {"filter": 1, "union": 1}
    assert set(c["pairs_by_shape"]) == {"lookup", "inverse", "two_hop", "intersection", "literal", "class"}
    assert c["negatives"] > 0 and c["steps"] == 2 and c["train_seconds"] > 0 and c["peak_rss_mb"] > 0
    assert (out / "model" / "modules.json").is_file()

    rk = Ranker.from_dir(out / "model")
    s = rk.scores("Which books did it write?", ["Book whose author is it", "the mayor of it"])
    assert s.shape == (2,) and -1.0 <= float(s.min()) <= float(s.max()) <= 1.0 + 1e-6

    pairs = build_pairs(RankerConfig(questions=[qs], negatives=2)).pairs
    for model in (None, out):
        acc = ranking_accuracy(model, pairs)
        assert 0.0 <= acc <= 1.0


def test_errors_are_one_line_and_write_nothing(tmp_path):
    from kgllm.cli import main

    out = tmp_path / "out"
    with pytest.raises(InputError, match="no training data"):
        run_stage("train.ranker", [], out, {})
    with pytest.raises(InputError, match="does not exist"):
        run_stage("train.ranker", [], out, {"lcquad": str(tmp_path / "missing.json.xz")})
    bad = write_questions(tmp_path / "bad.jsonl", PAIRS[-2:])  # FILTER and UNION only
    with pytest.raises(EmptyResultError, match="no usable question/query pairs"):
        run_stage("train.ranker", [], out, {"questions": [str(bad)]})
    assert not out.exists()
    assert main(["train", "ranker", "--out", str(out)]) == 2
    assert main(["train", "ranker", "--questions", str(bad), "--out", str(out)]) == 1
    assert not out.exists()
