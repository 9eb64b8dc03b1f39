"""The generator with a real (tiny, randomly initialised) local Llama from tests/tiny.py: it is shown the RAFT
prompt that ``train sft`` trains on (numbered facts, then the question) and decodes greedily. What happens
to its text (the citation check and the fallback) is tested in tests/test_grounding.py."""

from __future__ import annotations

import pytest

from kgllm.ask.generate import Generator
from kgllm.ask.grounding import FACT_CHARS, AnswerGrammar, build_prompt, check_answer, is_refusal


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny import train_tiny_tokenizer, write_tiny_corpus, write_tiny_model

    d = tmp_path_factory.mktemp("tiny")
    corpus = write_tiny_corpus(d / "corpus")
    tok = train_tiny_tokenizer(corpus, d / "tok")
    return write_tiny_model(tok, d / "model")


CITES = [{"n": 1, "s": "<L>", "p": "<hub>", "o": "<F>",
          "labels": {"s": "Lufthansa", "p": "hub airport", "o": "Frankfurt Airport"}},
         {"n": 2, "s": "<L>", "p": "<hub>", "o": "<M>",
          "labels": {"s": "Lufthansa", "p": "hub airport", "o": "Munich Airport"}}]
Q = "What is the hub airport of Lufthansa?"


def test_prompt_holds_the_numbered_facts():
    p = build_prompt(Q, CITES)
    assert "Lufthansa | hub airport | Frankfurt Airport [1]\nLufthansa | hub airport | Munich Airport [2]" in p
    assert p.endswith(f"Question: {Q}")


def test_generator_uses_the_training_prompt_and_decodes_greedily(tiny_model):
    from kgllm.train.data import PLAIN_PROMPT

    gen = Generator(tiny_model, max_new_tokens=8)
    # The tiny tokenizer has no chat template: the plain format `train sft` uses for it.
    assert not gen.chat and gen.prompt(Q, CITES) == PLAIN_PROMPT.format(prompt=build_prompt(Q, CITES))
    a = gen.generate(Q, CITES)
    assert isinstance(a, str) and "\n" not in a
    assert gen.generate(Q, CITES) == a


def test_answer_only_decoding_cannot_open_with_the_refusal(tiny_model):
    import torch

    gen = Generator(tiny_model, max_new_tokens=8, constrained=False)
    enc = gen.tok(gen.prompt(Q, CITES), return_tensors="pt", add_special_tokens=not gen.chat)
    with torch.no_grad():
        first = int(gen.model(**enc).logits[0, -1].argmax())
    plain = gen.generate(Q, CITES)
    assert gen.tok.encode(plain, add_special_tokens=False)[0] == first
    # The refusal's openers are banned at the first position only: ban the token greedy decoding opens with.
    gen._refusal_starts = lambda: [first]
    banned = gen.generate(Q, CITES, answer_only=True)
    assert banned != plain and gen.tok.encode(banned, add_special_tokens=False)[0] != first
    # The openers of a real tokenizer's refusal are found ("not", "Not", " not", ...).
    del gen._refusal_starts
    assert gen._refusal_starts() and all(isinstance(i, int) for i in gen._refusal_starts())


# ----------------------------------------------------------------------------- constrained decoding


def test_the_answer_grammar_holds_the_shown_labels_with_their_numbers_and_the_refusal():
    g = AnswerGrammar(CITES, Q)
    # The topic the question names (Lufthansa) is no answer; each answer label goes with its own fact's number.
    assert set(g.items) == {"Frankfurt Airport", "Munich Airport"}
    for text in ("Frankfurt Airport [1]", "Munich Airport [2] and Frankfurt Airport [1]",
                 "Frankfurt Airport [1], Munich Airport [2]", "not in the graph",
                 " Frankfurt Airport [1]"):
        assert g.state(text) == (True, True), text
    for text in ("", "Frank", "Frankfurt Airport [", "Frankfurt Airport [1] and", "not in"):
        assert g.state(text) == (True, False), text
    for text in ("Frankfurt Airport [2]", "Lufthansa [1]", "Frankfurt Airport [3]", "Frankfurt Airport",
                 "Frankfurt Airport [1] and Frankfurt Airport [1]", "Frankfurt Airport [1][2]",
                 "The answer is Frankfurt Airport [1]", "Berlin [1]", "not in the graph [1]"):
        assert not g.state(text)[1], text
    assert not g.state("Frankfurt Airport [1] and Berlin")[0]
    # The retry after a refusal: no refusal.
    assert AnswerGrammar(CITES, Q, refuse=False).state("not") == (False, False)
    # The question names an end by the entity the retrieval linked (an alias): that end is no answer either.
    assert set(AnswerGrammar(CITES, "What is the hub airport of the German flag carrier?", linked={"<L>"}).items) \
        == {"Frankfurt Airport", "Munich Airport"}
    # Only facts about what the question names are offered (or a chain's last hop, its first hop shown): a true
    # fact about another airline supports nothing; with no fact about it, the refusal is the only text.
    klm = {"n": 3, "s": "<K>", "p": "<hub>", "o": "<S>", "labels": {"s": "KLM", "p": "hub airport", "o": "Schiphol"}}
    city = {"n": 4, "s": "<F>", "p": "<city>", "o": "<FR>", "labels": {"s": "Frankfurt Airport", "p": "city", "o": "Frankfurt"}}
    g = AnswerGrammar([*CITES, klm, city], Q)
    assert set(g.items) == {"Frankfurt Airport", "Munich Airport", "Frankfurt"} and not g.state("Schiphol [3]")[0]
    lone = AnswerGrammar([klm], Q)
    assert lone.items == {} and lone.state("not in the graph") == (True, True) and lone.branches("") == (True, False)
    # The answers of one query: every item answers by the first item's relation (the predicate's label: a dbo:
    # and a dbp: property of one name alike).
    founded = {"n": 3, "s": "<L>", "p": "<place>", "o": "<B>",
               "labels": {"s": "Lufthansa", "p": "founding place", "o": "Berlin"}}
    raw = {"n": 4, "s": "<L>", "p": "<dbp-hub>", "o": "<H>", "labels": {"s": "Lufthansa", "p": "hub airport", "o": "Hamburg"}}
    g = AnswerGrammar([*CITES, founded, raw], Q)
    assert g.state("Berlin [3]") == (True, True) and g.state("Frankfurt Airport [1] and Hamburg [4]") == (True, True)
    assert not g.state("Frankfurt Airport [1] and Berlin")[0] and not g.state("Berlin [3], Munich")[0]
    # No founding place is left after Berlin: no separator either (it would lead nowhere).
    assert not g.state("Berlin [3] and")[0] and not g.state("Berlin [3],")[0]
    assert g.state("Frankfurt Airport [1] and")[0] and not g.state("Frankfurt Airport [1], Munich Airport [2], Hamburg [4],")[0]
    # Further citations: facts holding the same answer, and a chain's first hop to what the question names.
    saab = [{"n": 1, "s": "<S9>", "p": "<maker>", "o": "<SA>",
             "labels": {"s": "Saab 9000", "p": "manufacturer", "o": "Saab Automobile"}},
            {"n": 2, "s": "<SA>", "p": "<city>", "o": "<T>", "labels": {"s": "Saab Automobile", "p": "city", "o": "Trollhättan"}},
            {"n": 3, "s": "<S9>", "p": "<class>", "o": "<E>",
             "labels": {"s": "Saab 9000", "p": "class", "o": "Executive car"}},
            {"n": 4, "s": "<V>", "p": "<city>", "o": "<T>", "labels": {"s": "Volvo", "p": "city", "o": "Trollhättan"}}]
    g = AnswerGrammar(saab, "In which city is the maker of the Saab 9000?")
    for text in ("Trollhättan [2][1]", "Trollhättan [2][4][1]", "Saab Automobile [1][2]"):
        assert g.state(text) == (True, True), text
    for text in ("Trollhättan [2][3]", "Executive car [3][1]", "Trollhättan [2][1][1]"):
        assert not g.state(text)[1], text
    # A long object as the prompt shows it (cut), and part of a multi-byte character.
    long = {"n": 3, "s": "<L>", "p": "<abs>", "o": '"' + "x" * 300 + '"', "labels": {"s": "Lufthansa", "p": "abstract", "o": "x" * 300}}
    g = AnswerGrammar([*CITES, {"n": 4, "s": "<W>", "p": "<d>", "o": "<S>",
                                "labels": {"s": "Walter Warlimont", "p": "death place", "o": "Saint-Lô"}}, long],
                      "Where did Walter Warlimont die, and what are the hubs of Lufthansa?")
    assert g.state("x" * (FACT_CHARS - 1) + "… [3]") == (True, True)
    assert g.state("Saint-L", partial="ô".encode()[:1]) == (True, False)   # "ô" goes on from there
    assert g.state("Saint-L", partial="ł".encode()[:1]) == (False, False)  # another first byte
    assert g.state("Sa", partial="ô".encode()[:1]) == (False, False)       # "i" does, one byte
    assert g.state("Saint-Lô [4]") == (True, True)


def test_constrained_decoding_writes_only_what_the_shown_facts_hold(tiny_model):
    """A randomly initialised model writes junk when free; constrained, every text it writes is an answer
    the grammar holds, and the citation check finds each name in the fact it cites."""
    free = Generator(tiny_model, max_new_tokens=48, constrained=False).generate(Q, CITES)
    gen = Generator(tiny_model, max_new_tokens=48, constrained=True)
    # By default (auto) only a model trained on RAFT examples decodes constrained: not this one.
    assert not Generator(tiny_model).constrained
    text = gen.generate(Q, CITES)
    assert text != free and AnswerGrammar(CITES, Q).state(text) == (True, True)
    chk = check_answer(text, CITES, Q)
    assert chk.supported and (chk.refusal or set(chk.answers) <= {"<F>", "<M>"})
    assert gen.generate(Q, CITES) == text                                   # greedy: the same text again
    again = gen.generate(Q, CITES, answer_only=True)                       # the retry: no refusal
    assert not is_refusal(again) and AnswerGrammar(CITES, Q, refuse=False).state(again) == (True, True)
    assert check_answer(again, CITES, Q).supported
    # Facts with a name in another script: the multi-byte characters are decoded whole or not at all.
    other = [{"n": 1, "s": "<W>", "p": "<d>", "o": "<S>",
              "labels": {"s": "Walter Warlimont", "p": "death place", "o": "Saint-Lô"}},
             {"n": 2, "s": "<W>", "p": "<b>", "o": "<O>",
              "labels": {"s": "Walter Warlimont", "p": "birth place", "o": "Osnabrück"}}]
    q = "Where did Walter Warlimont die?"
    text = gen.generate(q, other, answer_only=True)
    assert "\ufffd" not in text and AnswerGrammar(other, q, refuse=False).state(text) == (True, True)


def test_constrained_decoding_answers_when_the_answers_together_outweigh_the_refusal(tiny_model):
    """The first decision weighs the branches: the refusal's first token may be the single most likely one,
    yet the answers' first tokens together more likely; then the most likely answer token is taken."""
    import math

    import torch

    from kgllm.ask.generate import _Constrain

    gen = Generator(tiny_model, constrained=True)
    grammar = AnswerGrammar(CITES, Q)
    proc = _Constrain(0, grammar, gen.tok, gen.eos_ids, gen.token_bytes)

    def first(prefix: str) -> int:    # a token that writes a prefix of `prefix` and of nothing the other branch holds
        for i in range(len(gen.tok)):
            t = proc._text([i])
            if t and t[0].strip() and prefix.startswith(t[0]) and sum(grammar.branches(*t)) == 1:
                return i
        raise AssertionError(prefix)

    refuse, frank, munich = first("not in the graph"), first("Frankfurt Airport"), first("Munich Airport")

    def row(p: dict[int, float]):
        r = torch.full((len(gen.tok),), -1e4)
        for i, v in p.items():
            r[i] = math.log(v)
        return r

    # 0.4 against 0.3 + 0.3: answer, with the more likely answer token.
    assert proc._pick([], row({refuse: 0.4, frank: 0.25, munich: 0.35})) == munich
    assert proc._pick([], row({refuse: 0.6, frank: 0.2, munich: 0.2})) == refuse       # the refusal outweighs them
    # After the start the choice is made: the refusal goes on as greedy decoding would.
    assert grammar.branches("not") == (True, False) and grammar.branches("Frankfurt") == (False, True)
    # The retry has no refusal to weigh: the most likely answer token, as before.
    retry = _Constrain(0, AnswerGrammar(CITES, Q, refuse=False), gen.tok, gen.eos_ids, gen.token_bytes)
    assert retry._pick([], row({refuse: 0.5, frank: 0.2, munich: 0.3})) == munich


def test_constrained_decoding_with_no_fact_about_the_question_refuses_without_decoding(tiny_model):
    """Where no shown fact is about what the question names, the grammar holds the refusal alone (and the
    retry no text): the decoder returns it without running the model."""
    gen = Generator(tiny_model, constrained=True)
    klm = [{"n": 1, "s": "<K>", "p": "<hub>", "o": "<S>", "labels": {"s": "KLM", "p": "hub airport", "o": "Schiphol"}}]
    calls = []
    gen.model.register_forward_hook(lambda *a: calls.append(1))
    assert gen.generate(Q, klm) == "not in the graph" and gen.generate(Q, klm, answer_only=True) == ""
    assert not calls
    # With a fact about Lufthansa the model decodes, and its text is one the grammar holds.
    text = gen.generate(Q, [*klm, {**CITES[0], "n": 2}])
    assert calls and AnswerGrammar([*klm, {**CITES[0], "n": 2}], Q).state(text) == (True, True)
