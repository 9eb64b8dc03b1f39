"""Generated answer text with a real (tiny, randomly initialised) local Llama from kgllm.train.tiny: the model
only words the answer; the answer terms and the cited triples stay the extractive ones."""

from __future__ import annotations

import pytest
from test_ask_answer import build_rag_index

from kgllm.ask.generate import Generator, build_prompt


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny import train_tiny_tokenizer, write_tiny_corpus, write_tiny_model

    d = tmp_path_factory.mktemp("tiny")
    corpus = write_tiny_corpus(d / "corpus")
    tok = train_tiny_tokenizer(corpus, d / "tok")
    return write_tiny_model(tok, d / "model")


def test_prompt_holds_the_numbered_facts():
    cites = [{"n": 1, "text": "Lufthansa hub airport Frankfurt Airport"},
             {"n": 2, "text": "Lufthansa hub airport Munich Airport"}]
    p = build_prompt("What is the hub airport of Lufthansa?", cites)
    assert "[1] Lufthansa hub airport Frankfurt Airport\n[2] Lufthansa hub airport Munich Airport" in p
    assert p.endswith("Question: What is the hub airport of Lufthansa?")


@pytest.mark.slow
def test_generative_mode_keeps_the_extractive_evidence(tiny_model, session_tmp, dbpedia_graph):
    from kgllm.ask.answer import Answerer

    index = build_rag_index(session_tmp, dbpedia_graph)
    gen = Generator(tiny_model, max_new_tokens=8)
    plain = Answerer.from_dir(index, sparql="off")
    worded = Answerer(plain.index, sparql="off", generator=gen)
    q = "What is the hub airport of Lufthansa?"
    a, b = plain.ask(q), worded.ask(q)
    assert b["mode"] == "generative" and a["mode"] == "extractive"
    assert isinstance(b["answer"], str) and b["answer"].strip()
    assert b["answers"] == a["answers"] and [c["id"] for c in b["citations"]] == [c["id"] for c in a["citations"]]
    assert "generate_ms" in b["timings"]
    # Greedy decoding: the same question gives the same text.
    assert worded.ask(q)["answer"] == b["answer"]
    # Nothing to word when the graph has no answer: no generation, the honest reply stays.
    c = worded.ask("What is the boiling point of Lufthansa?")
    assert c["answer"] == "not in the graph" and c["mode"] == "extractive"
