"""Grounded generated answers (kgllm.ask.grounding, kgllm.train.raft): the citation check on hand-made facts,
RAFT examples built from the ask tests' real index (DBpedia subset + WordNet subset), the fallback of
``ask --model`` with a real tiny model whose output is junk, supported texts kept, the reported bug (a
refusal above a correct citation is never shown), ``train sft`` on the RAFT artifact and the metrics of
``eval qa --model``."""

from __future__ import annotations

import json

import pytest

from kgllm.ask.grounding import NOT_IN_GRAPH, answer_text, build_prompt, check_answer, ground, is_refusal
from kgllm.rdf import DBO, DBR

R = lambda x: f"<{DBR}{x}>"  # noqa: E731
P = lambda x: f"<{DBO}{x}>"  # noqa: E731


def fact(n, s, p, o, ls, lp, lo, tid=None):
    return {"n": n, "id": tid or f"t{n}", "s": s, "p": p, "o": o, "labels": {"s": ls, "p": lp, "o": lo}}


FACTS = [
    fact(1, R("Lufthansa"), P("hubAirport"), R("Munich_Airport"), "Lufthansa", "hub airport", "Munich Airport"),
    fact(2, R("Lufthansa"), P("subsidiary"), R("Lufthansa_Cargo"), "Lufthansa", "subsidiary", "Lufthansa Cargo"),
    fact(3, R("Lufthansa"), P("hubAirport"), R("Frankfurt_Airport"), "Lufthansa", "hub airport",
         "Frankfurt Airport"),
    fact(4, R("Lufthansa"), P("foundingYear"), '"1953"^^<http://www.w3.org/2001/XMLSchema#gYear>', "Lufthansa",
         "founding year", "1953"),
]
Q = "What is the hub airport of Lufthansa?"


# ----------------------------------------------------------------------------- the check


def test_cited_answers_held_by_their_facts_are_supported():
    c = check_answer("Frankfurt Airport [3] and Munich Airport [1]", FACTS, Q, expected=[R("Munich_Airport")])
    assert c.supported and not c.refusal and c.cited == [3, 1]
    assert c.answers == [R("Frankfurt_Airport"), R("Munich_Airport")] and c.agrees is True
    # A sentence around the answer, naming the topic from the question, and several numbers in one marker.
    c = check_answer("Lufthansa's hub airports are Frankfurt Airport and Munich Airport [1, 3].", FACTS, Q)
    assert c.supported and set(c.answers) == {R("Frankfurt_Airport"), R("Munich_Airport")}
    # A literal answer.
    c = check_answer("1953 [4]", FACTS, "When was Lufthansa founded?")
    assert c.supported and c.answers == [FACTS[3]["o"]]
    # A label with non-ASCII punctuation (an en dash) names no word its fact does not hold.
    parent = {"n": 1, "id": "p", "s": R("KLM"), "p": DBO + "parentCompany", "o": R("Air_France–KLM"),
              "labels": {"s": "KLM", "p": "parent company", "o": "Air France–KLM"}}
    c = check_answer("Air France–KLM [1]", [parent], "Which company owns KLM?")
    assert c.supported and c.answers == [R("Air_France–KLM")], c.reason
    assert not check_answer("Air Berlin–KLM [1]", [parent], "Which company owns KLM?").supported


def test_citation_out_of_range_is_unsupported():
    c = check_answer("Frankfurt Airport [7]", FACTS, Q)
    assert not c.supported and "[7]" in c.reason and "4 facts" in c.reason


def test_cited_fact_that_does_not_hold_the_answer_is_unsupported():
    c = check_answer("Frankfurt Airport [1]", FACTS, Q)     # [1] is Munich Airport
    assert not c.supported and "[1]" in c.reason
    # Only the question's own entity: nothing answered.
    assert not check_answer("Lufthansa [2]", FACTS, Q).supported
    # A name the cited fact does not hold, added to a right one.
    c = check_answer("Berlin Tegel and Frankfurt Airport [3]", FACTS, Q)
    assert not c.supported and "Tegel" in c.reason


def test_cited_fact_about_something_the_question_does_not_name_is_unsupported():
    marcks = fact(5, R("Erich_Marcks"), P("deathPlace"), R("Normandy"), "Erich Marcks", "death place", "Normandy")
    c = check_answer("Normandy [5]", [*FACTS, marcks], "Who was the first person on Mars?")
    assert not c.supported and "[5]" in c.reason and "nothing the question names" in c.reason
    # The question names the entity by an alias the retrieval linked: the fact is about it.
    klm = fact(1, R("KLM"), P("alliance"), R("SkyTeam"), "KLM", "alliance", "SkyTeam")
    q = "Which airline alliance does Koninklijke Luchtvaart Maatschappij belong to?"
    assert not check_answer("SkyTeam [1]", [klm], q).supported
    c = check_answer("SkyTeam [1]", [klm], q, linked=[R("KLM")])
    assert c.supported and c.answers == [R("SkyTeam")]


def test_a_fact_about_the_schema_is_no_answer():
    """A fact about the ontology ("IATA code | domain | airline") answers no question about things: its ends are
    neither accepted by the check nor offered by the grammar; the thing the question asks for is."""
    from kgllm.ask.grounding import AnswerGrammar
    from kgllm.rdf import OWL, PROPERTY_TYPES, RDF_TYPE, RDFS, RDFS_DOMAIN, RDFS_RANGE

    q = "Which airline runs the SKYPASS frequent flyer programme?"
    facts = [fact(1, R("Korean_Air"), f"<{DBO}frequentFlyer>", '"SKYPASS"', "Korean Air", "frequent flyer", "SKYPASS"),
             fact(2, P("iataCode"), RDFS_DOMAIN, P("Airline"), "IATA code", "domain", "airline"),
             fact(3, P("hubAirport"), RDFS_RANGE, P("Airline"), "hub airport", "range", "airline"),
             fact(4, P("alliance"), RDF_TYPE, sorted(PROPERTY_TYPES)[0], "alliance", "type", "object property"),
             fact(5, P("Cargo_airline"), f"<{RDFS}subClassOf>", P("Airline"), "cargo airline", "sub class of", "airline"),
             fact(6, P("Airline"), RDF_TYPE, f"<{OWL}Class>", "airline", "type", "class"),
             fact(7, R("Korean_Air"), RDF_TYPE, P("Airline"), "Korean Air", "type", "airline")]
    linked = {P("Airline")}
    c = check_answer("IATA code [2]", facts, q, linked=linked)
    assert not c.supported and "[2], a fact about the schema" in c.reason
    assert not check_answer("cargo airline [5]", facts, q, linked=linked).supported
    assert check_answer("Korean Air [1]", facts, q, linked=linked).supported
    g = AnswerGrammar(facts, q, linked)
    assert set(g.items) == {"Korean Air"} and not g.state("IATA code")[0] and not g.state("cargo")[0]
    # A thing's type is data, not schema: "What is Korean Air?" may be answered with its class.
    assert set(AnswerGrammar(facts, "What is Korean Air?").items) == {"SKYPASS", "airline"}


def test_claim_without_citation_is_unsupported_and_refusals_are_recognized():
    c = check_answer("The hub airport of Lufthansa is Munich Airport.", FACTS, Q)
    assert not c.supported and c.reason == "the answer cites no fact"
    c = check_answer("Frankfurt Airport [3]. It was opened in 1936.", FACTS, Q)
    assert not c.supported and "1936" in c.reason               # an uncited claim after the citation
    for text in (NOT_IN_GRAPH, "Not in the graph.", "The answer is not provided.", "I don't know."):
        c = check_answer(text, FACTS, "What is the boiling point of Lufthansa?")
        assert c.supported and c.refusal, text
    assert not is_refusal("Frankfurt Airport [3]")
    assert not check_answer("", FACTS, Q).supported


def test_two_hop_answer_citing_both_hops_names_the_end_not_the_bridge():
    facts = [fact(1, R("Saab_9000"), P("manufacturer"), R("Saab_Automobile"), "Saab 9000", "manufacturer",
                  "Saab Automobile"),
             fact(2, R("Saab_Automobile"), P("locationCity"), R("Trollhättan"), "Saab Automobile", "location city",
                  "Trollhättan")]
    q = "In which city is the manufacturer of the Saab 9000 located?"
    c = check_answer("Saab Automobile is located in Trollhättan [1][2]", facts, q)
    assert c.supported and c.answers == [R("Trollhättan")] and c.completed == []


def test_a_chain_cited_by_its_last_hop_is_completed_from_the_shown_facts():
    hop1 = fact(1, R("Saab_9000"), P("manufacturer"), R("Saab_Automobile"), "Saab 9000", "manufacturer",
                "Saab Automobile")
    hop2 = fact(2, R("Saab_Automobile"), P("locationCity"), R("Trollhättan"), "Saab Automobile", "location city",
                "Trollhättan")
    other = fact(3, R("Erich_Marcks"), P("deathPlace"), R("Normandy"), "Erich Marcks", "death place", "Normandy")
    q = "In which city is the maker of the Saab 9000?"
    c = check_answer("Trollhättan [2]", [hop1, hop2, other], q)
    assert c.supported and c.completed == [1] and c.answers == [R("Trollhättan")] and "[1]" in c.reason
    # Without the first hop among the shown facts nothing links [2] to the question: unsupported.
    c = check_answer("Trollhättan [2]", [hop2, other], q)
    assert not c.supported and not c.completed and "nothing the question names" in c.reason
    # A shown fact about what the question names that shares no term with the cited one links nothing.
    c = check_answer("Normandy [3]", [hop1, hop2, other], q)
    assert not c.supported and not c.completed
    # Not through a class: another company's type fact links nothing to Lufthansa.
    typed = [fact(1, R("Lufthansa"), "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", P("Company"),
                  "Lufthansa", "type", "company"),
             fact(2, R("Porsche"), "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", P("Company"),
                  "Porsche", "type", "company")]
    assert not check_answer("Porsche [2]", typed, "Who owns Lufthansa?").supported
    # ground() shows the completed hop first among the citations, and records it.
    out = {"answer": "Trollhättan", "answers": [{"term": R("Trollhättan")}], "supported": True, "seeds": [],
           "citations": [], "mode": "extractive"}
    res = ground(out, "Trollhättan [2]", [hop1, hop2, other], q)
    assert res["mode"] == "generative" and [f["n"] for f in res["citations"]] == [1, 2]
    assert res["grounding"]["completed"] == [1] and res["grounding"]["cited"] == [2]


def test_prompt_and_target_format():
    p = build_prompt(Q, FACTS[:2])
    assert "Lufthansa | hub airport | Munich Airport [1]\nLufthansa | subsidiary | Lufthansa Cargo [2]" in p
    assert p.endswith(f"Question: {Q}") and "not in the graph" in p
    assert answer_text([("Frankfurt Airport", [3]), ("Munich Airport", [1])]) == \
        "Frankfurt Airport [3] and Munich Airport [1]"
    assert answer_text([("A", [1]), ("B", [2]), ("C", [1, 3])]) == "A [1], B [2] and C [1][3]"
    assert answer_text([]) == NOT_IN_GRAPH


# ----------------------------------------------------------------------------- RAFT examples


@pytest.fixture(scope="module")
def raft(rag_index, tmp_path_factory):
    from kgllm.registry import run_stage

    d = tmp_path_factory.mktemp("raft")
    held = d / "eval.jsonl"   # an evaluation set: Lufthansa (by name) and the puppy synset (by entity) stay out
    held.write_text(json.dumps({"question": "What is the hub airport of Lufthansa?", "answers": []}) + "\n"
                    + json.dumps({"question": "What is a whelp?", "answers": [],
                                  "entity": "https://w3id.org/kgllm/wordnet/3.0/01322604-n"}) + "\n")
    out = d / "raft"
    man = run_stage("train.raft_data", [rag_index], out, {"exclude_questions": [str(held)], "unanswerable": 0.3,
                                                          "absent": 0.5, "validation": 0.2, "test": 0.2,
                                                          "max_examples": 40})
    rows = {s: [json.loads(x) for x in (out / "sft" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "validation", "test")}
    return out, man, rows


def test_raft_examples_mix_support_with_distinct_distractors(raft, rag_index):
    from kgllm.index.facade import load_index

    _out, man, rows = raft
    idx = load_index(rag_index)
    allrows = [r for rs in rows.values() for r in rs]
    answerable = [r for r in allrows if r["answerable"]]
    assert answerable and any(not r["answerable"] for r in allrows)
    for r in answerable:
        assert set(r["support"]) <= set(r["facts"])                       # the supporting triples are shown
        distractors = [t for t in r["facts"] if t not in r["support"]]
        assert len(distractors) == r["distractors"] >= 1                   # and distractors beside them
        assert len(set(r["facts"])) == len(r["facts"])
        answers = {a for a in r["answers"]}
        for rec in idx.triples(distractors):                               # no distractor holds an answer
            assert rec.s[1:-1] not in answers and rec.o[1:-1] not in answers
        chk = check_answer(r["completion"], [{"n": i + 1, **f} for i, f in enumerate(_facts(idx, r["facts"]))],
                           r["question"])
        assert chk.supported and chk.cited == r["cited"] and r["completion"] != NOT_IN_GRAPH
        assert f"Question: {r['question']}" in r["prompt"] and " [1]\n" in r["prompt"]
    # Shuffled: the supporting fact is not always [1].
    assert len({r["facts"].index(r["support"][0]) for r in answerable}) > 1


def _facts(idx, ids):
    return [{"id": t.id, "s": t.s, "p": t.p, "o": t.o,
             "labels": {"s": idx.label(t.s), "p": idx.label(t.p), "o": idx.label(t.o)}} for t in idx.triples(ids)]


def test_raft_unanswerable_examples_show_no_support_and_refuse(raft):
    _out, man, rows = raft
    un = [r for rs in rows.values() for r in rs if not r["answerable"]]
    for r in un:
        assert r["completion"] == NOT_IN_GRAPH and r["support"] == [] and r["cited"] == []
        assert r["facts"] and r["distractors"] == len(r["facts"])
    c = man.counts
    assert c["examples"] == c["with_support"] + c["unanswerable"] == sum(c[f"sft_{s}"] for s in rows)
    assert c["unanswerable"] == len(un)
    assert c["questions"] + c["absent_questions"] == (c["examples"] + c["schema_questions"] + c["excluded_eval"]
                                                      + c["duplicate_questions"] + c["sampled_out"]
                                                      + c["no_distractors"] + c["unverifiable"])
    absent = [r for r in un if r["type"] == "absent"]
    assert absent and c["unanswerable_absent"] == len(absent)    # "What is the wingspan of KLM?"-style
    assert c["distractors"] == sum(r["distractors"] for rs in rows.values() for r in rs)


def test_raft_split_by_entity_keeps_evaluated_entities_out(raft):
    _out, man, rows = raft
    ents = {s: {r["entity"] for r in rs} for s, rs in rows.items()}
    assert not (ents["train"] & ents["validation"] or ents["train"] & ents["test"] or
                ents["validation"] & ents["test"])
    everything = set().union(*ents.values())
    assert f"{DBR}Lufthansa" not in everything                           # named by an evaluated question
    assert "https://w3id.org/kgllm/wordnet/3.0/01322604-n" not in everything  # an evaluated question's entity
    assert man.counts["excluded_eval"] > 0 and man.counts["excluded_entities"] >= 2
    assert all(r["split"] == s for s, rs in rows.items() for r in rs)


def test_raft_inverse_lists_from_several_indices_without_the_schema(raft, rag_index, tmp_path):
    """A second graph (an ontology loaded with its data): inverse questions answered by the subjects, both
    airlines cited; questions about the ontology's own classes and properties left out; the first index's
    questions come once (its duplicates counted), and the counts add up."""
    from kgllm.rdf import OWL, RDF, RDFS, GraphWriter
    from kgllm.registry import run_stage

    def t(s, p, o):
        return (s, f"<{p}>", o)

    lab = lambda x: f'"{x}"@en'  # noqa: E731
    air = [R("Test_Air_One"), R("Test_Air_Two")]
    triples = [t(a, DBO + "hubAirport", R("Test_Field")) for a in air] + [
        t(a, RDF + "type", f"<{DBO}Airline>") for a in air] + [
        t(air[0], RDFS + "label", lab("Test Air One")), t(air[1], RDFS + "label", lab("Test Air Two")),
        t(R("Test_Field"), RDFS + "label", lab("Test Field")), t(R("Test_Field"), DBO + "city", R("Test_Town")),
        t(R("Test_Town"), RDFS + "label", lab("Test Town")), t(R("Test_Town"), DBO + "country", R("Test_Land")),
        t(R("Test_Land"), RDFS + "label", lab("Test Land")), t(R("Test_Field"), DBO + "runwayLength", '"3200"'),
        t(f"<{DBO}Airline>", RDF + "type", f"<{OWL}Class>"), t(f"<{DBO}Airline>", RDFS + "label", lab("airline")),
        t(f"<{DBO}hubAirport>", RDF + "type", f"<{OWL}ObjectProperty>"),
        t(f"<{DBO}hubAirport>", RDFS + "label", lab("hub airport")),
        t(f"<{DBO}hubAirport>", RDFS + "domain", f"<{DBO}Airline>")]
    with GraphWriter(tmp_path / "graph") as w:
        w.add_all(triples, {"source": "test"})
    run_stage("index", [tmp_path / "graph"], tmp_path / "index", {"vector": {"entities": False}})
    _out, first, _rows = raft
    # Distractors from the vector retriever, the quickest: the hybrid one (the default) is the fixture's.
    man = run_stage("train.raft_data", [rag_index, tmp_path / "index"], tmp_path / "raft",
                    {"unanswerable": 0.0, "absent": 0.0, "validation": 0.0, "test": 0.0, "retriever": "vector"})
    rows = [json.loads(x) for x in (tmp_path / "raft" / "sft" / "train.jsonl").read_text().splitlines()]
    inv = [r for r in rows if r["type"] == "inverse" and r["entity"] == f"{DBR}Test_Field"]
    assert inv and all(set(r["answers"]) == {a[1:-1] for a in air} for r in inv)
    assert all("Test Field" in r["question"] and "hub airport" in r["question"] for r in inv)
    for r in inv:   # "Test Air One [2] and Test Air Two [4]": both subjects, each citing its own fact
        assert "Test Air One [" in r["completion"] and "Test Air Two [" in r["completion"] and len(r["cited"]) == 2
    c = man.counts
    assert c["schema_questions"] > 0 and not any("ontology" in r["entity"] for r in rows)
    assert c["duplicate_questions"] == 0   # (different graphs: nothing asked twice)
    assert c["questions"] + c["absent_questions"] == (c["examples"] + c["schema_questions"] + c["excluded_eval"]
                                                      + c["duplicate_questions"] + c["sampled_out"]
                                                      + c["no_distractors"] + c["unverifiable"])
    assert c["questions"] > first.counts["questions"]   # the first index's questions, and the second's
    twice = run_stage("train.raft_data", [rag_index, rag_index], tmp_path / "twice", {"max_examples": 5})
    c = twice.counts   # the same graph twice: every question it keeps comes again once
    assert c["duplicate_questions"] * 2 == c["questions"] + c["absent_questions"] - c["excluded_eval"] - \
        c["schema_questions"] > 0


def test_train_sft_reads_the_raft_artifact(raft, tiny_model, tmp_path):
    from kgllm.registry import run_stage

    out, _man, rows = raft
    man = run_stage("train.sft", [out], tmp_path / "sft", {"model": str(tiny_model), "max_steps": 1, "batch_size": 2,
                                                           "max_length": 1024, "save_steps": 1, "max_eval_examples": 2})
    assert man.kind == "model.sft" and man.counts["train_examples"] == len(rows["train"])
    assert [i.get("kind") for i in man.inputs][0] == "corpus.raft"
    # A model trained on RAFT examples decodes constrained by default (`ask --model`, --decoding auto).
    from kgllm.ask.generate import raft_trained

    assert raft_trained(tmp_path / "sft") and not raft_trained(tiny_model) and not raft_trained("smollm2-135m-instruct")


# ----------------------------------------------------------------------------- the fallback


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny import train_tiny_tokenizer, write_tiny_corpus, write_tiny_model

    d = tmp_path_factory.mktemp("tiny")
    corpus = write_tiny_corpus(d / "corpus")
    return write_tiny_model(train_tiny_tokenizer(corpus, d / "tok"), d / "model")


@pytest.fixture(scope="module")
def junk(rag_index, tiny_model):
    """An answerer whose model (random weights) writes junk: decoded freely, its own text."""
    from kgllm.ask.answer import Answerer
    from kgllm.ask.generate import Generator

    return Answerer.from_dir(rag_index, sparql="off",
                             generator=Generator(tiny_model, max_new_tokens=12, constrained=False))


def test_junk_text_falls_back_to_the_extractive_answer_or_refusal(junk):
    from kgllm.ask.answer import Answerer

    plain = Answerer(junk.index, sparql="off")
    a, b = plain.ask(Q), junk.ask(Q)
    assert a["grounding"] is None and a["mode"] == "extractive"
    g = b["grounding"]
    assert g["checked"] and not g["supported"] and g["fallback"] == "extractive" and g["reason"]
    assert b["mode"] == "extractive-fallback" and b["answer"] == a["answer"] and b["answers"] == a["answers"]
    assert [c["id"] for c in b["citations"]] == [c["id"] for c in a["citations"]]
    assert g["facts"][:2] == [c["id"] for c in a["citations"]] and len(g["facts"]) > 2  # + context distractors
    assert "generate_ms" in b["timings"]
    assert junk.ask(Q)["grounding"]["generated"] == g["generated"]   # greedy: the same text again
    # Nothing in the graph: the model still sees the retrieved context (it may refuse), and junk is not shown.
    c = junk.ask("What is the boiling point of Lufthansa?")
    assert c["answer"] == NOT_IN_GRAPH and not c["supported"] and c["citations"] == []
    assert c["mode"] == "refusal-fallback" and c["grounding"]["fallback"] == "not_in_graph"
    assert c["grounding"]["facts"]


def test_supported_generated_text_is_kept_with_its_citations(junk):
    from kgllm.ask.grounding import choose_facts

    out = junk.ask(Q)
    facts = junk._citations(choose_facts(junk.index, [c["id"] for c in out["citations"]],
                                         [c["id"] for c in out["context"]]))
    n = {c["labels"]["o"]: c["n"] for c in facts}
    text = f"Frankfurt Airport [{n['Frankfurt Airport']}] and Munich Airport [{n['Munich Airport']}]"
    res = ground(out, text, facts, Q)
    assert res["mode"] == "generative" and res["answer"] == text and res["supported"]
    assert {a["value"] for a in res["answers"]} == {DBR + "Frankfurt_Airport", DBR + "Munich_Airport"}
    assert [c["n"] for c in res["citations"]] == [n["Frankfurt Airport"], n["Munich Airport"]]
    assert res["grounding"] == {**res["grounding"], "checked": True, "supported": True, "fallback": None}
    # A supported answer where the extractive answerer found none is kept too (the model read the facts).
    nothing = {**out, "answer": NOT_IN_GRAPH, "answers": [], "supported": False, "citations": []}
    assert ground(nothing, text, facts, Q)["mode"] == "generative"
    # True of its fact, but none of the graph query's answers: a conflict, the extractive answer is shown.
    other = next(c for c in facts if c["s"] == R("Lufthansa") and "Airport" not in c["labels"]["o"]
                 and c["o"].startswith("<"))
    res = ground(out, f"{other['labels']['o']} [{other['n']}]", facts, Q)
    g = res["grounding"]
    assert g["supported"] and g["conflict"] and g["fallback"] == "extractive" and g["agrees"] is False
    assert res["mode"] == "extractive-fallback" and res["answer"] == out["answer"]
    assert g["answers"] == [other["o"][1:-1]] and "Frankfurt Airport" in g["reason"]


def test_refusal_that_contradicts_its_evidence_is_not_shown(junk):
    """The reported bug: "The answer is not provided." printed above its own correct citation."""
    from kgllm.ask.grounding import choose_facts

    q = "What is the hub airport of Lufthansa?"
    out = junk.ask(q)
    facts = junk._citations(choose_facts(junk.index, [c["id"] for c in out["citations"]],
                                         [c["id"] for c in out["context"]]))
    res = ground({**out, "mode": "extractive", "grounding": None}, "The answer is not provided.", facts, q)
    assert res["answer"] != "The answer is not provided." and res["answer"] == "Frankfurt Airport and Munich Airport"
    assert res["mode"] == "extractive-fallback" and res["grounding"]["fallback"] == "extractive"
    assert res["grounding"]["refusal"] and not res["grounding"]["supported"]
    # An honest refusal (nothing in the graph answers) is kept, as "not in the graph".
    empty = {**out, "answer": NOT_IN_GRAPH, "answers": [], "supported": False, "citations": []}
    kept = ground(empty, "The answer is not provided.", facts, q)
    assert kept["answer"] == NOT_IN_GRAPH and kept["mode"] == "generative" and kept["grounding"]["supported"]


def test_eval_judges_a_refusal_by_whether_a_fact_shown_holds_a_gold_answer(junk):
    """``unsupported`` judges a refusal against the gold answers (a fact shown holds one: the refusal is
    false); ``check_failed`` is the check as ask runs it, where the extractive answer stands in for gold."""
    from kgllm.ask.grounding import choose_facts
    from kgllm.eval.qa import _shown, aggregate, score

    q = "What is the hub airport of Lufthansa?"
    out = junk.ask(q)
    facts = junk._citations(choose_facts(junk.index, [c["id"] for c in out["citations"]],
                                         [c["id"] for c in out["context"]]))
    refused = ground({**out, "grounding": None}, NOT_IN_GRAPH, facts, q)       # above facts that answer
    shown = _shown(junk, refused)
    assert {c["o"] for c in shown} >= {R("Frankfurt_Airport"), R("Munich_Airport")}
    right = score(refused, {"answers": [DBR + "Munich_Airport"]}, shown)
    assert right["unsupported"] == 1.0 and right["check_failed"] == 1.0
    # The graph cannot answer it (the extractive answer was wrong): the refusal claimed nothing false.
    none = score(refused, {"answers": []}, shown)
    assert none["unsupported"] == 0.0 and none["check_failed"] == 1.0
    elsewhere = score(refused, {"answers": [DBR + "Berlin_Brandenburg_Airport"]}, shown)
    assert elsewhere["unsupported"] == 0.0 and elsewhere["false_refusal"] == 0.0    # the fallback answered
    # A refusal the check kept (the extractive answerer found nothing), though a fact shown holds the answer.
    empty = {**out, "answer": NOT_IN_GRAPH, "answers": [], "supported": False, "citations": [], "grounding": None}
    kept = ground(empty, NOT_IN_GRAPH, facts, q)
    missed = score(kept, {"answers": [DBR + "Frankfurt_Airport"]}, _shown(junk, kept))
    assert missed["unsupported"] == 1.0 and missed["check_failed"] == 0.0 and missed["false_refusal"] == 1.0
    a = aggregate([right, none, elsewhere, missed])
    assert a["unsupported_rate"] == 0.5 and a["check_failed_rate"] == 0.75
    # The model's own citations are judged whether the check kept its text or not; refusals cite nothing.
    gold = {"answers": [DBR + "Frankfurt_Airport", DBR + "Munich_Airport"]}
    first = facts[0]["labels"]["o"]
    kept_text = ground({**out, "grounding": None}, f"{first} [1]", facts, q)
    assert kept_text["mode"] == "generative"
    assert score(kept_text, gold, _shown(junk, kept_text))["model_citation_precision"] == 1.0
    beyond = ground({**out, "grounding": None}, f"{first} [1][{len(facts) + 3}]", facts, q)
    assert beyond["mode"] == "extractive-fallback"                       # cites a fact it was not shown
    sc = score(beyond, gold, _shown(junk, beyond))
    assert sc["model_citation_precision"] == 0.5 and sc["citation_precision"] == 1.0   # the fallback's own
    assert right["model_citation_precision"] is None
    # Without the facts shown (an answer no model wrote, or a caller of score alone): the check's verdict.
    assert score(refused, {"answers": []})["unsupported"] == 1.0 and _shown(junk, {**out, "grounding": None}) is None


def test_a_refusal_above_facts_that_answer_is_decoded_again_without_it(rag_index, tiny_model):
    """The first decoding refuses although the cited facts answer (planted): the answerer decodes once more
    without the refusal's opening words, and shows that text only when it passes the check."""
    from kgllm.ask.answer import Answerer
    from kgllm.ask.generate import Generator

    gen = Generator(tiny_model, max_new_tokens=12, constrained=False)
    real, calls = gen.generate, []

    def planted(question, facts, answer_only=False, linked=()):
        calls.append(answer_only)
        if not answer_only:
            return NOT_IN_GRAPH
        n = {c["labels"]["o"]: c["n"] for c in facts}
        both = f"Frankfurt Airport [{n['Frankfurt Airport']}] and Munich Airport [{n['Munich Airport']}]"
        return both if len(calls) < 3 else f"Frankfurt Airport [{n['Frankfurt Airport']}]"

    gen.generate = planted
    ans = Answerer.from_dir(rag_index, sparql="off", generator=gen)
    res = ans.ask(Q)
    g = res["grounding"]
    assert calls == [False, True] and res["mode"] == "generative" and res["answer"].startswith("Frankfurt Airport [")
    assert g["supported"] and g["retry"] == {"generated": NOT_IN_GRAPH, "reason": g["retry"]["reason"]}
    assert "refused" in g["retry"]["reason"]
    # A second text that holds only some of the graph query's answers is no better answer: the fallback stands.
    res = ans.ask(Q)
    g = res["grounding"]
    assert calls == [False, True, False, True] and res["mode"] == "extractive-fallback"
    assert g["retry"]["supported"] is False and "Munich Airport" in g["retry"]["reason"]
    assert res["answer"] == "Frankfurt Airport and Munich Airport"
    # The second text fails the check (the real tiny model's junk): the extractive fallback stands.
    gen.generate = lambda question, facts, answer_only=False, linked=(): NOT_IN_GRAPH if not answer_only else \
        real(question, facts, answer_only=True)
    res = ans.ask(Q)
    g = res["grounding"]
    assert res["mode"] == "extractive-fallback" and g["fallback"] == "extractive" and g["refusal"]
    assert g["retry"]["supported"] is False and g["retry"]["generated"] != NOT_IN_GRAPH
    # No retry where nothing contradicts the refusal, nor for a text that is no refusal.
    assert ans.ask("Who was the first person on Mars?")["grounding"]["retry"] is None


def test_constrained_answers_name_only_the_shown_facts(rag_index, tiny_model, capsys):
    """Constrained decoding (``ask --model --decoding constrained``): even a model with random weights writes only the shown
    facts' labels with their own numbers (or the refusal), so the check never finds a citation out of range,
    a name from elsewhere or a text without a citation; what is left to it is whether the cited facts are
    about what the question names and whether they agree with the graph query."""
    from kgllm.ask.answer import Answerer
    from kgllm.ask.generate import Generator
    from kgllm.ask.grounding import AnswerGrammar, linked_terms
    from kgllm.cli import main

    ans = Answerer.from_dir(rag_index, sparql="off", generator=Generator(tiny_model, constrained=True))
    for q in (Q, "Which company makes Audi A4?", "What is the boiling point of Lufthansa?",
              "Who was the first person on Mars?"):
        res = ans.ask(q)
        g = res["grounding"]
        facts = ans._citations(g["facts"])
        linked = linked_terms(res)
        for text, refuse in ((g["generated"], True), *(((g["retry"]["generated"], False),) if g["retry"] else ())):
            assert AnswerGrammar(facts, q, linked, refuse=refuse).state(text) == (True, True), (q, text)
        assert not any(w in g["reason"] for w in ("which is not one of", "names '", "cites no fact", "names nothing"))
        if res["mode"] == "generative" and not g["refusal"]:
            held = {t for c in facts for t in (c["s"], c["o"])}
            assert {a["term"] for a in res["answers"]} <= held and res["citations"]
    # The CLI decodes the same way (its 64 tokens are the Generator's default).
    assert main(["ask", Q, "--index", str(rag_index), "--model", str(tiny_model), "--no-sparql", "--json",
                 "--decoding", "constrained"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["grounding"]["generated"] == ans.ask(Q)["grounding"]["generated"]


def test_ask_cli_with_model_records_the_fallback(rag_index, tiny_model, capsys):
    from kgllm.cli import main

    free = ["--decoding", "free"]
    assert main(["ask", Q, "--index", str(rag_index), "--model", str(tiny_model), "--no-sparql", "--json", *free]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "extractive-fallback" and out["grounding"]["fallback"] == "extractive"
    assert out["answer"] == "Frankfurt Airport and Munich Airport"
    assert main(["ask", Q, "--index", str(rag_index), "--model", str(tiny_model), "--no-sparql", *free]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Frankfurt Airport and Munich Airport\n") and "is not shown: " in text


def test_eval_qa_reports_grounding_metrics(junk, tmp_path):
    from kgllm.eval.qa import evaluate, format_table, score

    qs = [{"id": "a", "type": "one_hop", "question": Q, "answers": [DBR + "Frankfurt_Airport", DBR + "Munich_Airport"]},
          {"id": "b", "type": "unanswerable", "question": "What is the boiling point of Lufthansa?", "answers": []}]
    rep, preds = evaluate(junk, qs, ("hybrid",))
    a = rep["retrievers"]["hybrid"]["overall"]
    assert a["generated"] == 2 and a["unsupported_rate"] == 1.0               # junk fails the check each time
    assert a["fallbacks"] == {"extractive": 1, "not_in_graph": 1}
    assert a["f1"] == 1.0 and a["f1_no_fallback"] == 0.5                      # the fallback saved question a
    assert a["refusal_accuracy"] == 1.0 and a["citation_recall"] == 1.0 and a["citation_precision"] == 1.0
    assert preds["hybrid"][0]["mode"] == "extractive-fallback" and preds["hybrid"][0]["grounding"]["fallback"]
    assert "| hybrid | 2 | 1.00 | 0.50 | 1.00 | 1.00 | 1.00 | 100.0% of 2 | 100.0% | 1 / 1 |" in format_table(rep)
    # Citation recall by the gold supporting triples when the question has them.
    pred = {"supported": True, "answers": [{"value": DBR + "Frankfurt_Airport"}],
            "citations": [{"id": "t3", "s": R("Lufthansa"), "o": R("Frankfurt_Airport")}]}
    sc = score(pred, {"answers": [DBR + "Frankfurt_Airport"], "triple_ids": ["t3", "t9"]})
    assert sc["citation_recall"] == 0.5 and sc["refusal"] is None and sc["unsupported"] is None


def test_eval_qa_records_how_the_model_decoded(rag_index, tiny_model, tmp_path):
    from kgllm.cli import main

    qs = tmp_path / "q.jsonl"
    qs.write_text(json.dumps({"id": "a", "question": Q, "answers": [DBR + "Frankfurt_Airport", DBR + "Munich_Airport"]})
                  + "\n")
    args = ["eval", "qa", "--index", str(rag_index), "--questions", str(qs), "--model", str(tiny_model),
            "--no-sparql", "--retriever", "hybrid"]
    # auto: free for a model not trained on RAFT examples (tests/tiny.py's).
    for decoding, used in (("free", "free"), ("constrained", "constrained"), ("auto", "free")):
        out = tmp_path / decoding
        assert main([*args, "--out", str(out), "--decoding", decoding]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["decoding"] == used and json.loads((out / "manifest.json").read_text())["config"]["decoding"] \
            == decoding
        assert report["retrievers"]["hybrid"]["overall"]["generated"] == 1
    assert main([*args, "--out", str(tmp_path / "x"), "--decoding", "sampled"]) == 2     # a usage error
    assert not (tmp_path / "x").exists()


def test_citation_precision_counts_the_first_hop_of_a_chain_and_leaves_computed_answers_out():
    from kgllm.eval.qa import score

    def fact(i, s, o):
        return {"id": i, "s": R(s), "o": o if o.startswith('"') else R(o)}

    gold = {"answers": ['+1']}
    hop, held = fact("h", "Erich_Marcks", "Normandy"), fact("a", "Normandy", '"+1"')
    other_hop, near = fact("x", "Erich_Marcks", "Saint-Lô"), fact("n", "Normandy", "France")
    pred = {"supported": True, "shape": "two_hop", "answers": [{"value": "+1"}], "seeds": [DBR + "Erich_Marcks"],
            "citations": [held, hop]}
    assert score(pred, gold)["citation_precision"] == 1.0       # the hop from the question's entity counts
    # A hop to another place, or a fact that only shares the answer's subject, does not.
    assert score({**pred, "citations": [held, other_hop]}, gold)["citation_precision"] == 0.5
    assert score({**pred, "citations": [held, near]}, gold)["citation_precision"] == 0.5
    assert score({**pred, "seeds": []}, gold)["citation_precision"] == 0.5   # nothing linked: no chain
    # A count's citations (the counted facts) hold no "3": not judged without gold supporting triples...
    count = {"supported": True, "shape": "count", "answers": [{"value": "3"}], "citations": [hop, other_hop]}
    sc = score(count, {"answers": ["3"]})
    assert sc["citation_precision"] is None and sc["citation_recall"] is None and sc["f1"] == 1.0
    # ...and judged by them when the question has them.
    sc = score(count, {"answers": ["3"], "triple_ids": ["h", "x", "y"]})
    assert sc["citation_precision"] == 1.0 and sc["citation_recall"] == 2 / 3


def test_the_topic_of_the_query_anchors_a_fact_the_question_names_in_other_words():
    """"Amsterdam Schiphol" is not the label "Amsterdam Airport Schiphol" and the linker missed it, but the
    answer's query started from it (its ``topic``): a fact about it is about what the question names."""
    q = "Which airlines use Amsterdam Schiphol as one of their hubs?"
    facts = [fact(1, R("KLM"), P("hubAirport"), R("Amsterdam_Airport_Schiphol"), "KLM", "hub airport",
                  "Amsterdam Airport Schiphol")]
    out = {"answer": "KLM", "supported": True, "seeds": [DBO + "Airline"], "citations": facts,
           "answers": [{"term": R("KLM"), "value": DBR + "KLM", "label": "KLM", "kind": "iri"}],
           "topic": {"iri": DBR + "Amsterdam_Airport_Schiphol", "label": "Amsterdam Airport Schiphol"}}
    res = ground(out, "KLM [1]", facts, q)
    assert res["grounding"]["supported"] and res["mode"] == "generative"
    res = ground({**out, "topic": None}, "KLM [1]", facts, q)
    assert not res["grounding"]["supported"] and "nothing the question names" in res["grounding"]["reason"]


ASKED_PREFIXES = f"PREFIX dbo: <{DBO}> PREFIX dbr: <{DBR}> "


def test_raft_questions_in_peoples_own_words(rag_index, tmp_path):
    """``raft-data --questions FILE`` (QALD-style: question, answers, a SELECT over one basic graph pattern):
    each question the graph answers is an example in its own wording, its support the triples its query
    matches with an answer at one end; the others are counted by why, and the counts add up."""
    from kgllm.errors import InputError
    from kgllm.rdf import triple_id
    from kgllm.registry import run_stage

    asked = [
        ("What took the place of the Saab 9000?", [DBR + "Saab_9-5"], "SELECT DISTINCT ?uri WHERE { dbr:Saab_9000 dbo:successor ?uri }"),
        ("Which cars were put together in Uusikaupunki?", [DBR + "Saab_9000"],
         "SELECT ?x WHERE { ?x dbo:assembly dbr:Uusikaupunki } ORDER BY ?x"),
        ("Who founded Tesla?", [DBR + "Elon_Musk"], "SELECT ?x WHERE { dbr:Tesla_Motors dbo:foundedBy ?x }"),
        ("Which cars did Valmet build?", [DBR + "Saab_96"],
         "SELECT ?x WHERE { ?x dbo:assembly ?y FILTER(?y = dbr:Uusikaupunki) }"),
    ]
    f = tmp_path / "asked.jsonl"
    f.write_text("".join(json.dumps({"question": q, "answers": a, "query": ASKED_PREFIXES + s}) + "\n"
                         for q, a, s in asked))
    man = run_stage("train.raft_data", [rag_index], tmp_path / "raft",
                    {"questions": [str(f)], "types": ["definition"], "unanswerable": 0.0, "absent": 0.0,
                     "validation": 0.0, "test": 0.0, "retriever": "vector"})
    rows = [json.loads(x) for x in (tmp_path / "raft" / "sft" / "train.jsonl").read_text().splitlines()]
    got = {r["question"]: r for r in rows if r["type"] == "asked"}
    assert set(got) == {asked[0][0], asked[1][0]}
    succ = got[asked[0][0]]
    assert succ["entity"] == DBR + "Saab_9000" and succ["answers"] == [DBR + "Saab_9-5"]
    assert succ["support"] == [triple_id(R("Saab_9000"), f"<{DBO}successor>", R("Saab_9-5"))]
    assert succ["completion"].startswith("Saab 9-5 [") and set(succ["support"]) <= set(succ["facts"])
    inv = got[asked[1][0]]   # the answer is the subject: "Saab 9000 [n]"
    assert inv["entity"] == DBR + "Uusikaupunki" and inv["completion"].startswith("Saab 9000 [")
    for r in got.values():
        assert f"Question: {r['question']}" in r["prompt"]
        assert len(r["facts"]) > len(r["support"])   # retrieved distractors beside the support
    c = man.counts
    assert (c["asked_read"], c["asked_questions"], c["asked_no_support"], c["asked_not_one_pattern"],
            c["asked_too_many_answers"]) == (4, 2, 1, 1, 0)
    assert c["type_asked"] == 2
    assert c["questions"] + c["absent_questions"] == (c["examples"] + c["schema_questions"] + c["excluded_eval"]
                                                      + c["duplicate_questions"] + c["sampled_out"]
                                                      + c["no_distractors"] + c["unverifiable"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "Who?", "answers": "Audi"}) + "\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        run_stage("train.raft_data", [rag_index], tmp_path / "bad", {"questions": [str(bad)]})
    assert not (tmp_path / "bad").exists()


def test_asked_questions_take_the_matched_triples_that_hold_an_answer():
    """The support of a question read from a file: the triples its pattern matches with a gold answer at one
    end; a class constraint only where no other triple holds that answer; a literal it names is no entity."""
    import pyoxigraph

    from kgllm.rdf import triple_id
    from kgllm.train.raft import ASKED, asked_questions, construct_query

    a = lambda x: f"<{DBR}{x}>"  # noqa: E731
    hub, typ, abbr = f"<{DBO}hubAirport>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{DBO}abbreviation>"
    nt = "".join(f"{s} {p} {o} .\n" for s, p, o in [
        (a("Lufthansa"), hub, a("Frankfurt_Airport")), (a("Condor"), hub, a("Frankfurt_Airport")),
        (a("Lufthansa"), typ, f"<{DBO}Airline>"), (a("Condor"), typ, f"<{DBO}Airline>"),
        (a("Indian_Council"), abbr, '"ICRO"')])
    store = pyoxigraph.Store()
    store.bulk_load(nt.encode(), format=pyoxigraph.RdfFormat.N_TRIPLES)
    qs = [{"question": "Which airlines fly from Frankfurt?", "answers": [DBR + "Lufthansa", DBR + "Condor"],
           "query": ASKED_PREFIXES + "SELECT ?x WHERE { ?x a dbo:Airline ; dbo:hubAirport dbr:Frankfurt_Airport }",
           "where": "q:1"},
          {"question": "What does ICRO stand for?", "answers": [DBR + "Indian_Council"],
           "query": ASKED_PREFIXES + 'SELECT ?x WHERE { ?x dbo:abbreviation "ICRO" }', "where": "q:2"},
          {"question": "Is Condor an airline?", "answers": [], "query": "ASK { ?x ?p ?o }", "where": "q:3"}]
    counts = {"asked_not_one_pattern": 0, "asked_too_many_answers": 0}
    got = asked_questions(store, qs, counts)
    assert [q["type"] for q in got] == [ASKED, ASKED] and counts["asked_not_one_pattern"] == 1 and qs == []
    fly, icro = got
    assert fly["answers"] == [DBR + "Condor", DBR + "Lufthansa"] and fly["entity"] == DBR + "Frankfurt_Airport"
    assert sorted(fly["triple_ids"]) == sorted(triple_id(a(x), hub, a("Frankfurt_Airport")) for x in ("Condor", "Lufthansa"))
    assert icro["entity"] == DBR + "Indian_Council" and icro["answers"] == [DBR + "Indian_Council"]
    assert construct_query(ASKED_PREFIXES + "SELECT ?x WHERE { ?x a dbo:Airline } ORDER BY ?x LIMIT 1") == \
        ASKED_PREFIXES + "CONSTRUCT WHERE { ?x a dbo:Airline }"
    assert construct_query("SELECT ?x WHERE { { ?x a ?c } UNION { ?x ?p ?c } }") is None
