"""The ask stage end to end on a real index (real DBpedia sample facts + a WordNet 3.0 subset, real encoder,
faiss, pyoxigraph): planted one-hop and two-hop questions answered with the right citations, WordNet
definition/hypernym questions (plural lemma too), "not in the graph", SPARQL injection through the question,
the three retrievers, the CLI and the eval harness.

``build_rag_index`` is shared with tests/test_serve*.py (built once per session under the session temp dir).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from kgllm.cli import main
from kgllm.rdf import DBO, DBR, DC, KGWN, ONTOLEX, RDF, RDFS, WN, GraphWriter, iter_graph, triple_id

# DBpedia entities whose facts the tests ask about (one- and two-hop chains inside the subset).
ENTITIES = ("British_Airways", "KLM", "Lufthansa", "Lufthansa_Cargo", "Saab_9000", "Saab_Automobile",
            "Saab_96", "Valmet_Automotive", "Erich_Marcks")
LONG = {f"<{DBO}abstract>", f"<{RDFS}comment>"}

# WordNet 3.0 synsets copied from Debian's wordnet-base data.noun (offset-pos: lemmas, definition, hypernyms).
SYNSETS = {
    "02084071-n": (["dog", "domestic_dog", "Canis_familiaris"], "a member of the genus Canis (probably descended "
                   "from the common wolf) that has been domesticated by man since prehistoric times; occurs in "
                   "many breeds", ["02083346-n", "01317541-n"]),
    "02083346-n": (["canine", "canid"], "any of various fissiped mammals with nonretractile claws and typically "
                   "long muzzles", ["02075296-n"]),
    "01317541-n": (["domestic_animal", "domesticated_animal"], "any of various animals that have been tamed and "
                   "made fit for a human environment", []),
    "01322604-n": (["puppy"], "a young dog", ["01322343-n", "02084071-n"]),
    "01322343-n": (["pup", "whelp"], "young of any of various canines such as a dog or wolf", []),
    "02075296-n": (["carnivore"], "a terrestrial or aquatic flesh-eating mammal", []),
    "02121808-n": (["domestic_cat", "house_cat", "Felis_domesticus", "Felis_catus"], "any domesticated member of "
                   "the genus Felis", ["02121620-n", "01317541-n"]),
    "02121620-n": (["cat", "true_cat"], "feline mammal usually having thick soft fur and no ability to roar: "
                   "domestic cats; wildcats", ["02120997-n"]),
    "02120997-n": (["feline", "felid"], "any of various lithe-bodied roundheaded fissiped mammals, many with "
                   "retractile claws", []),
}


def R(x: str) -> str:
    return f"<{DBR}{x}>"


def S(x: str) -> str:
    return f"<{KGWN}{x}>"


def wordnet_triples() -> list[tuple[str, str, str]]:
    u = lambda x: f"<{x}>"  # noqa: E731
    t = []
    for key, (lemmas, definition, hypers) in SYNSETS.items():
        s = S(key)
        t += [(s, u(RDF + "type"), u(ONTOLEX + "LexicalConcept")), (s, u(RDF + "type"), u(WN + "Synset")),
              (s, u(WN + "partOfSpeech"), u(WN + "noun")),
              (s, u(RDFS + "label"), f'"{lemmas[0].replace("_", " ")}"@en'),
              (s, u(DC + "identifier"), f'"{lemmas[0].lower()}.n.01"'), (s, u(WN + "definition"), f'"{definition}"@en')]
        t += [(s, u(WN + "hypernym"), S(h)) for h in hypers] + [(S(h), u(WN + "hyponym"), s) for h in hypers]
        for n, lemma in enumerate(lemmas):
            entry = KGWN + "entry/" + quote(lemma) + "-n"
            sense = u(KGWN + "sense/" + quote(f"{lemma.lower()}%1:05:0{n}::"))
            t += [(u(entry), u(RDF + "type"), u(ONTOLEX + "LexicalEntry")),
                  (u(entry), u(ONTOLEX + "canonicalForm"), u(entry + "#form")),
                  (u(entry + "#form"), u(ONTOLEX + "writtenRep"), f'"{lemma.replace("_", " ")}"@en'),
                  (u(entry), u(RDFS + "label"), f'"{lemma.replace("_", " ")}"@en'), (u(entry), u(ONTOLEX + "sense"), sense),
                  (sense, u(RDF + "type"), u(ONTOLEX + "LexicalSense")), (sense, u(ONTOLEX + "isLexicalizedSenseOf"), s)]
    return t


def build_rag_index(session_tmp: Path, dbpedia_graph: Path) -> Path:
    """Index over a DBpedia subset (abstracts left out: encoding them is slow) + the WordNet subset."""
    from kgllm.registry import run_stage

    root = session_tmp / "rag"
    index = root / "index"
    if (index / "manifest.json").exists():
        return index
    keep = {R(e) for e in ENTITIES}
    with GraphWriter(root / "dbpedia") as w:
        w.add_all([t for t in iter_graph(dbpedia_graph) if t[0] in keep and t[1] not in LONG],
                  {"source": "dbpedia-sample subset"})
    with GraphWriter(root / "wordnet") as w:
        w.add_all(wordnet_triples(), {"source": "wordnet-3.0 subset (hand-copied from data.noun)"})
    # Entity vectors are not used by the answerer: leaving them out halves the encoding time.
    run_stage("index", [root / "dbpedia", root / "wordnet"], index, {"vector": {"batch_size": 128, "entities": False}})
    return index


def _values(out):
    return [a["value"] for a in out["answers"]]


def test_embedded_store_is_built_only_when_a_template_runs(rag_index):
    from kgllm.ask.answer import Answerer

    ans = Answerer.from_dir(rag_index)
    ans.warmup(["vector"])
    assert not hasattr(ans.sparql.store, "query")  # vector-only never loaded the triples into a store
    out = ans.ask("What is the hub airport of Lufthansa?", "graph")
    assert hasattr(ans.sparql.store, "query") and "hubAirport> ?x" in out["sparql"]


def test_one_hop_answer_cites_the_supporting_triples(answerer):
    out = answerer.ask("What is the hub airport of Lufthansa?")
    assert out["supported"] and out["shape"] == "one_hop"
    assert set(_values(out)) == {DBR + "Frankfurt_Airport", DBR + "Munich_Airport"}
    hub = f"<{DBO}hubAirport>"
    assert {c["id"] for c in out["citations"]} == {triple_id(R("Lufthansa"), hub, R(x))
                                                   for x in ("Frankfurt_Airport", "Munich_Airport")}
    c = out["citations"][0]
    assert c["s"] == R("Lufthansa") and c["p"] == hub and c["provenance"]["source"] == "dbpedia-sample subset"
    assert out["path"] == [{"predicate": DBO + "hubAirport", "label": "hub airport", "direction": "out"}]
    # The exact lookup ran through the one-hop SPARQL template on the embedded store.
    assert "<http://dbpedia.org/resource/Lufthansa> <http://dbpedia.org/ontology/hubAirport> ?x" in out["sparql"]
    assert {"link_ms", "vector_ms", "graph_ms", "sparql_ms", "retrieval_ms", "total_ms"} <= set(out["timings"])
    assert 0 < out["timings"]["retrieval_ms"] <= out["timings"]["total_ms"]
    # Another phrasing, and a wh-word that selects between two matching predicates.
    assert _values(answerer.ask("Where is KLM headquartered?")) == [DBR + "Amstelveen", DBR + "Netherlands"]


def test_two_hop_follows_the_right_edges(answerer):
    out = answerer.ask("In which city is the manufacturer of the Saab 9000 located?")
    assert out["shape"] == "two_hop" and _values(out) == [DBR + "Trollhättan"]
    assert [p["predicate"] for p in out["path"]] == [DBO + "manufacturer", DBO + "locationCity"]
    assert [c["id"] for c in out["citations"]] == [
        triple_id(R("Saab_9000"), f"<{DBO}manufacturer>", R("Saab_Automobile")),
        triple_id(R("Saab_Automobile"), f"<{DBO}locationCity>", R("Trollhättan"))]
    out = answerer.ask("Which alliance is the parent company of Lufthansa Cargo a member of?")
    assert _values(out) == [DBR + "Star_Alliance"] and out["shape"] == "two_hop"
    assert out["citations"][0]["o"] == R("Lufthansa")
    # The vector-only retriever has no chain to follow: it answers with the first hop's object.
    vec = answerer.ask("In which city is the manufacturer of the Saab 9000 located?", "vector")
    assert _values(vec) != [DBR + "Trollhättan"]


def test_canonicalised_literals_from_sparql_keep_their_citations(answerer):
    """The store returns "...^^xsd:nonNegativeInteger" as xsd:integer; answers and citations use the graph's term."""
    from kgllm.ask.understand import literal_value

    emp = '"%s"^^<http://www.w3.org/2001/XMLSchema#nonNegativeInteger>'
    q = "What is the number of employees of the parent company of Lufthansa Cargo?"
    for sparql_ran in (answerer.ask("What is the number of employees of Lufthansa?"), answerer.ask(q)):
        assert sparql_ran["sparql"] and sparql_ran["supported"]
        last = sparql_ran["citations"][-1]
        assert last["s"] == R("Lufthansa") and last["p"] == f"<{DBO}numberOfEmployees>"
        assert last["o"].endswith("XMLSchema#nonNegativeInteger>") and sparql_ran["answers"][0]["term"] == last["o"]
        assert last["id"] == triple_id(last["s"], last["p"], last["o"])
    assert len(answerer.ask(q)["citations"]) == 2  # both hops
    assert literal_value(emp % "007") == literal_value('"7"^^<http://www.w3.org/2001/XMLSchema#integer>')
    assert literal_value('"7"@en') != literal_value('"7"') == literal_value('"7"^^<http://www.w3.org/2001/XMLSchema#string>')


def test_count_and_inverse_questions(answerer):
    out = answerer.ask("How many subsidiaries does KLM have?")
    assert out["shape"] == "count" and out["answer"] == "3" and len(out["citations"]) == 3
    assert {c["p"] for c in out["citations"]} == {f"<{DBO}subsidiary>"}
    # The entity named in the question is the object: the answer is the subject of the facts.
    out = answerer.ask("Which airline has Frankfurt Airport as hub airport?")
    assert set(_values(out)) == {DBR + "Lufthansa", DBR + "Lufthansa_Cargo"}
    assert out["path"][0]["direction"] == "in" and all(c["o"] == R("Frankfurt_Airport") for c in out["citations"])
    assert "?x <http://dbpedia.org/ontology/hubAirport> <http://dbpedia.org/resource/Frankfurt_Airport>" in \
        out["sparql"]


def test_wordnet_definition_and_hypernym(answerer):
    out = answerer.ask("What does puppy mean?")
    assert _values(out) == ["a young dog"] and out["citations"][0]["s"] == S("01322604-n")
    out = answerer.ask("What is a puppy a kind of?")
    assert set(_values(out)) == {KGWN + "01322343-n", KGWN + "02084071-n"}
    assert {a["label"] for a in out["answers"]} == {"pup", "dog"}
    # A plural lemma is linked through WordNet's morphology.
    out = answerer.ask("What are house cats a kind of?")
    assert set(_values(out)) == {KGWN + "02121620-n", KGWN + "01317541-n"}


def test_kinds_of_x_are_hyponyms_and_a_kind_of_thing_is_a_hypernym(answerer):
    """"the kinds of X" (its "of" takes the entity) asks for X's hyponyms; "a kind of" whose "of" takes
    anything else asks for its hypernyms, whichever words the two relations' phrasings share."""
    hyper, hypo = f"<{WN}hypernym>", f"<{WN}hyponym>"
    cases = {"What kind of animal is a dog?": ({"02083346-n", "01317541-n"}, hyper),   # canine, domestic animal
             "What kind of thing is a puppy?": ({"01322343-n", "02084071-n"}, hyper),   # pup, dog
             "What is a cat a kind of?": ({"02120997-n"}, hyper),                       # feline
             "What are the kinds of dog?": ({"01322604-n"}, hypo),                      # puppy
             "What types of dog are there?": ({"01322604-n"}, hypo),
             "What types of canine are there?": ({"02084071-n"}, hypo),                 # dog
             "What types of cat are there?": ({"02121808-n"}, hypo),                    # domestic cat
             "Which kinds of domestic animal exist?": ({"02084071-n", "02121808-n"}, hypo)}
    for q, (want, p) in cases.items():
        out = answerer.ask(q)
        assert set(_values(out)) == {KGWN + w for w in want}, q
        assert {c["p"] for c in out["citations"]} == {p}, q


def test_not_in_the_graph(answerer):
    from kgllm.ask.answer import NOT_IN_GRAPH

    for q in ("What is the boiling point of Lufthansa?", "Who painted the Mona Lisa?"):
        for mode in ("graph", "hybrid"):
            out = answerer.ask(q, mode)
            assert out["answer"] == NOT_IN_GRAPH and not out["supported"], (q, mode, out["answer"])
            assert out["answers"] == [] and out["citations"] == []


def test_sparql_injection_in_the_question_is_harmless(answerer):
    store = answerer.sparql.store
    before = len(store)
    for q in ['What is the hub airport of Lufthansa> } ; DROP ALL ; SELECT * { ?s ?p ?o ',
              'What is the hub airport of "Lufthansa"@en } INSERT DATA { <urn:x> <urn:y> <urn:z> } #',
              "What is the hub airport of Lufthansa}}{{predicate}}?"]:
        out = answerer.ask(q)
        assert len(store) == before
        # Whatever is answered comes from the real facts of the linked entity, never from injected text.
        for c in out["citations"]:
            assert c["s"].startswith("<http://dbpedia.org/resource/") and "urn:" not in c["o"]
    assert len(store) == before and not list(store.quads_for_pattern(None, None, None))[:0]


def test_retrievers_and_sparql_modes_agree_on_exact_answers(rag_index, answerer):
    from kgllm.ask.answer import Answerer

    no_sparql = Answerer.from_dir(rag_index, sparql="off")
    for q in ("What is the hub airport of Lufthansa?", "Which alliance is the parent company of Lufthansa Cargo "
              "a member of?", "What does puppy mean?"):
        a, b = answerer.ask(q, "graph"), no_sparql.ask(q, "graph")
        assert _values(a) == _values(b) and [c["id"] for c in a["citations"]] == [c["id"] for c in b["citations"]]
        assert b["sparql"] is None and a["sparql"]
    hy = answerer.ask("What is the hub airport of Lufthansa?", "hybrid")
    ids = [c["id"] for c in hy["context"]]
    assert set(c["id"] for c in hy["citations"]) <= set(ids[:4])  # the fused context starts with the evidence
    sub = hy["subgraph"]
    assert any(n["role"] == "topic" for n in sub["nodes"]) and any(e["cited"] for e in sub["edges"])


def test_cli_ask_json_and_text(rag_index, capsys):
    assert main(["ask", "What is the hub airport of Lufthansa?", "--index", str(rag_index), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["supported"] and out["citations"][0]["p"] == f"<{DBO}hubAirport>"
    assert main(["ask", "What is the boiling point of Lufthansa?", "--index", str(rag_index),
                 "--retriever", "graph"]) == 0
    assert capsys.readouterr().out.startswith("not in the graph")
    assert main(["ask", "x" * 501, "--index", str(rag_index)]) == 2
    assert "limit is 500" in capsys.readouterr().err
    # several questions share one index load: one answer block per question, a JSON list with --json
    qs = ["What is the hub airport of Lufthansa?", "What is the boiling point of Lufthansa?"]
    assert main(["ask", *qs, "--index", str(rag_index), "--retriever", "graph"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Q: {qs[0]}\n") and f"\n\nQ: {qs[1]}\nnot in the graph" in text
    assert main(["ask", *qs, "--index", str(rag_index), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert [o["supported"] for o in both] == [True, False]
    # --max-answers: the set listed at most so far, its full count kept; eval qa scores whole sets
    assert main(["ask", qs[0], "--index", str(rag_index), "--json", "--max-answers", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert len(one["answers"]) == 1 and one["total"] == len(out["answers"]) > 1
    assert main(["ask", qs[0], "--index", str(rag_index), "--max-answers", "0"]) == 2
    assert "--max-answers 0" in capsys.readouterr().err


def test_eval_qa_three_retrievers(rag_index, tmp_path, session_tmp, capsys):
    from kgllm.eval.question_sets import generate, write_questions

    root = session_tmp / "rag"
    rows = generate(iter_graph([root / "dbpedia", root / "wordnet"]), holdout=1.0, max_per_type=6, phrasings=1)
    types = {r["type"] for r in rows}
    assert {"one_hop", "two_hop", "definition", "hypernym", "unanswerable"} <= types
    assert all(r["answers"] or r["type"] == "unanswerable" for r in rows)
    qfile = tmp_path / "q.jsonl"
    write_questions(rows, qfile)
    assert main(["eval", "qa", "--index", str(rag_index), "--questions", str(qfile), "--out",
                 str(tmp_path / "ev")]) == 0
    assert "eval.qa artifact" in capsys.readouterr().out
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    r = rep["retrievers"]
    assert set(r) == {"vector", "graph", "hybrid"}
    hy, vec = r["hybrid"]["by_type"], r["vector"]["by_type"]
    assert hy["one_hop"]["hits@1"] >= 0.8 and hy["two_hop"]["hits@1"] >= 0.8
    assert hy["two_hop"]["hits@1"] >= vec["two_hop"]["hits@1"] + 0.15
    assert hy["unanswerable"]["hits@1"] == 1.0
    assert r["hybrid"]["overall"]["citation_precision"] >= 0.9
    preds = (tmp_path / "ev" / "predictions" / "hybrid.jsonl").read_text().splitlines()
    assert len(preds) == len(rows)
    assert "| hybrid | two_hop |" in (tmp_path / "ev" / "table.md").read_text()


def test_eval_qa_pipeline_stage(rag_index, tmp_path):
    from kgllm.artifacts import read_manifest
    from kgllm.errors import ConfigError
    from kgllm.registry import run_stage

    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"question": "What is the hub airport of KLM?", "answers": [DBR + "Amsterdam_Airport_Schiphol"],
                             "type": "one_hop"}) + "\n" + json.dumps({"question": "Who painted the Mona Lisa?",
                                                                       "answers": []}) + "\n")
    man = run_stage("eval.qa", [rag_index], tmp_path / "ev", {"questions": str(q), "retrievers": ["graph"]})
    assert man.kind == "eval.qa" and man.counts["graph_hits@1"] == 1.0 and man.counts["questions"] == 2
    assert read_manifest(tmp_path / "ev").inputs[0]["kind"] == "index"
    with pytest.raises(ConfigError):
        run_stage("eval.qa", [rag_index], tmp_path / "ev2", {})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    from kgllm.errors import InputError

    with pytest.raises(InputError, match="bad.jsonl:1"):
        run_stage("eval.qa", [rag_index], tmp_path / "ev3", {"questions": str(bad)})


def test_load_questions_checks_each_line(tmp_path):
    from kgllm.errors import InputError
    from kgllm.eval.qa import load_questions

    q = tmp_path / "q.jsonl"
    good = [{"question": f"What is the hub airport of airline {i}?", "answers": [DBR + "X", 7]} for i in range(3)]
    q.write_text("".join(json.dumps(r) + "\n" for r in good))
    rows = load_questions(q)
    assert [r["id"] for r in rows] == ["line1", "line2", "line3"] and rows[0]["answers"] == [DBR + "X", "7"]
    assert len(load_questions(q, limit=2)) == 2
    assert len(load_questions(q, limit=-1)) == 3  # like train.data.read_split: only limit > 0 limits
    cases = [
        ('{"question": "ok?", "answers": []}\n[1, 2]\n', r"q\.jsonl:2: expected a JSON object"),
        ('{"question": "ok?", "answers": []}\n{"question": \n', r"q\.jsonl:2: invalid JSON"),
        ('{"question": "  ", "answers": []}\n', r"q\.jsonl:1: the question is empty"),
        (json.dumps({"question": "x" * 501, "answers": []}) + "\n", r"q\.jsonl:1: .*the limit is 500"),
        ('{"question": "ok?", "answers": ["a"]}\n{"question": "ok?", "answers": [null]}\n',
         r"q\.jsonl:2: answer null is not a string"),
        ('{"question": "ok?", "answers": [{"x": 1}]}\n', r"q\.jsonl:1: answer \{\"x\": 1\} is not a string"),
        ('{"question": "ok?", "answers": [true]}\n', r"q\.jsonl:1: answer true is not a string"),
        ('{"question": "ok?", "answers": [], "type": null}\n', r"q\.jsonl:1: 'type' must be a string, not null"),
        ('{"question": "ok?", "answers": [], "id": 3}\n', r"q\.jsonl:1: 'id' must be a string, not 3"),
        ('{"question": "ok?", "answers": [], "triple_ids": "ab"}\n', r"q\.jsonl:1: 'triple_ids' must be a list"),
    ]
    for text, pattern in cases:
        q.write_text(text)
        with pytest.raises(InputError, match=pattern):
            load_questions(q)
