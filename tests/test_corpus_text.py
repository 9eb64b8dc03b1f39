"""Unit tests of the corpus text helpers: literals, cleaning, dedup, templates, splits."""

from __future__ import annotations

from kgllm.corpus.clean import clean_text
from kgllm.corpus.dedup import dedup, normalize_for_dedup
from kgllm.corpus.lexicon import RelationLexicon
from kgllm.corpus.planner import EntityMention, TextBuilder, render
from kgllm.corpus.render import render_literal, split_camel
from kgllm.corpus.splits import split_of

XSD = "http://www.w3.org/2001/XMLSchema#"


def test_literals():
    assert render_literal(f'"1974-03-31"^^<{XSD}date>') == "31 March 1974"
    assert render_literal(f'"1974"^^<{XSD}gYear>') == "1974"
    assert render_literal(f'"45000"^^<{XSD}nonNegativeInteger>') == "45,000"
    assert render_literal('"1.2E10"^^<http://dbpedia.org/datatype/euro>') == "12 billion euros"
    assert render_literal('"4.57"^^<http://dbpedia.org/datatype/kilometre>') == "4.57 km"
    assert render_literal('"Roma"@it') == "Roma (Italian)"
    assert render_literal('"Rome"@en') == "Rome"
    assert render_literal('"say \\"hi\\""') == 'say "hi"'
    assert split_camel("birthPlace") == "birth place" and split_camel("isbn") == "isbn"


def test_clean_text():
    raw = ("'''Normandy''' {{IPA|x}} is a [[France|French]] region&amp;more<ref>x</ref>.Since 1956 it "
           "has\u200b two  parts [3].")
    assert clean_text(raw) == "Normandy is a French region&more. Since 1956 it has two parts."


def test_dedup_exact_and_near():
    base = ("British Airways is the flag carrier airline of the United Kingdom and the largest airline in the "
            "United Kingdom based on fleet size, with hubs at Heathrow Airport and Gatwick Airport in London.")
    rows = [{"id": "a", "text": base},
            {"id": "b", "text": base.upper().replace(",", "")},                        # exact after normalizing
            {"id": "c", "text": base[:-1] + " and Manchester."},                          # near duplicate
            {"id": "d", "text": "KLM is the flag carrier airline of the Netherlands, based in Amstelveen."}]
    kept, removed = dedup(rows, lambda r: r["text"], threshold=0.8)
    assert [r["id"] for r in kept] == ["a", "d"]
    assert {(r["id"], r["duplicate_of"], r["kind"]) for r in removed} == {("b", "a", "exact"), ("c", "a", "near")}
    assert normalize_for_dedup("Hello, World!") == "hello world"


def test_templates_and_rendering():
    lex = RelationLexicon(lambda p: {"<http://example.org/p/colourOfHat>": "hat colour"}.get(p))
    t = lex.template("<http://dbpedia.org/ontology/birthPlace>")
    assert t.curated and t.is_verb_phrase and len(t.questions) >= 2
    fb = lex.template("<http://example.org/p/colourOfHat>")
    assert fb.sentence == "{s}'s hat colour is {o}." and not fb.curated
    assert lex.template("<http://example.org/p/fooBar>").label == "foo bar"
    tb = TextBuilder()
    tb.begin()
    render(tb, fb.sentence, EntityMention("it", "http://x/s", pronoun=True), [EntityMention("red")])
    tb.end(["t1"])
    assert tb.value() == "Its hat colour is red."
    assert tb.spans == [{"start": 0, "end": 3, "surface": "Its", "iri": "http://x/s", "types": [], "ref": "pronoun"}]
    tb = TextBuilder()
    render(tb, fb.sentence, EntityMention("British Airways", "http://x/ba"),
           [EntityMention("A", "http://x/a"), EntityMention("B")])
    assert tb.value() == "British Airways' hat colour is A and B."
    assert [(s["start"], s["end"]) for s in tb.spans] == [(0, 15), (31, 32)]


def test_split_is_stable_and_proportional():
    names = [f"http://x/e{i}" for i in range(2000)]
    splits = [split_of(n, 0.1, 0.1, 0) for n in names]
    assert splits == [split_of(n, 0.1, 0.1, 0) for n in names]
    assert 150 < splits.count("test") < 250 and 150 < splits.count("validation") < 250
