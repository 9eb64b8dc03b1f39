"""The generator with a real (tiny, randomly initialised) local Llama from tests/tiny.py: it is shown the RAFT
prompt that ``train sft`` trains on (numbered facts, then the question) and decodes greedily. What happens
to its text (the citation check and the fallback) is tested in tests/test_grounding.py."""

from __future__ import annotations

import pytest

from kgllm.ask.generate import Generator
from kgllm.ask.grounding import build_prompt


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny import train_tiny_tokenizer, write_tiny_corpus, write_tiny_model

    d = tmp_path_factory.mktemp("tiny")
    corpus = write_tiny_corpus(d / "corpus")
    tok = train_tiny_tokenizer(corpus, d / "tok")
    return write_tiny_model(tok, d / "model")


CITES = [{"n": 1, "labels": {"s": "Lufthansa", "p": "hub airport", "o": "Frankfurt Airport"}},
         {"n": 2, "labels": {"s": "Lufthansa", "p": "hub airport", "o": "Munich Airport"}}]
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

    gen = Generator(tiny_model, max_new_tokens=8)
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
