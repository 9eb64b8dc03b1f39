"""Faithfulness check: omissions and hallucinations of a text against its triples, mention spans, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgllm.corpus import faithfulness as F
from kgllm.corpus.webnlg import read_entries

DEV = Path(__file__).resolve().parent.parent / "examples" / "data" / "webnlg" / "dev.xml.xz"
XSD = "http://www.w3.org/2001/XMLSchema#"
DBR = "http://dbpedia.org/resource/"

BEAN = [("Alan_Bean", "birthPlace", "Wheeler,_Texas"), ("Alan_Bean", "mission", "Apollo_12")]
KNOWN = ["Alan_Bean", "Wheeler,_Texas", "Apollo_12", "Apollo_11", "Buzz_Aldrin", "NASA", "Mayor", "Texas"]


def test_correct_sentence_passes_and_spans_point_at_the_mentions():
    text = "Alan Bean, who was born in Wheeler, Texas, flew on Apollo 12."
    f = F.check(text, BEAN, known_entities=KNOWN)
    assert f.ok and f.omissions == [] and f.hallucinations == []
    for term, surface in (("Alan_Bean", "Alan Bean"), ("Wheeler,_Texas", "Wheeler, Texas"), ("Apollo_12", "Apollo 12")):
        assert [text[a:b] for a, b in f.spans[term]] == [surface]
    assert [text[a:b] for a, b in f.triple_spans[1]["o"]] == ["Apollo 12"]
    # sentence -> triple ids from the checked mentions
    two = "Alan Bean was born in Wheeler, Texas. He flew on Apollo 12."
    g = F.check(two, BEAN)
    assert g.sentence_triples([(0, 37), (38, len(two))]) == [[0], [1]]


def test_planted_omission_is_caught():
    f = F.check("Alan Bean was born in Wheeler, Texas.", BEAN, known_entities=KNOWN)
    assert f.omissions == ["Apollo_12"] and not f.ok and f.omitted_triples == [1]


def test_planted_hallucinations_are_caught():
    f = F.check("Alan Bean, born in Wheeler, Texas, flew on Apollo 12 with Buzz Aldrin.", BEAN, known_entities=KNOWN)
    assert [s for s, _ in f.hallucinations] == ["Buzz Aldrin"] and f.omissions == []
    a, b = f.hallucinations[0][1]
    assert f.text[a:b] == "Buzz Aldrin"
    # a wrong year
    triples = [("Alan_Bean", "birthDate", '"1932-03-15"^^<' + XSD + 'date>'), ("Alan_Bean", "mission", "Apollo_12")]
    ok = F.check("Alan Bean, born on 15 March 1932, flew on Apollo 12.", triples)
    assert ok.ok
    wrong = F.check("Alan Bean, born on 15 March 1933, flew on Apollo 12.", triples)
    assert ("1933", (28, 32)) in wrong.hallucinations and triples[0][2] in wrong.omissions
    extra = F.check("Alan Bean, born on 15 March 1932, flew on Apollo 12 in 1969.", triples)
    assert [s for s, _ in extra.hallucinations] == ["1969"] and extra.omissions == []


def test_conservative_hallucinations():
    # a part of an input's name, a predicate's own words, a title after an article, an ordinary capital
    assert F.check("Alan Bean was born in Wheeler, in Texas, and flew on Apollo 12.", BEAN, known_entities=KNOWN).ok
    f = F.check("Alan Bean was selected by NASA in 1963.",
                [("Alan_Bean", "selectedByNasa", "1963")], known_entities=KNOWN)
    assert f.ok
    f = F.check("The 1st runway of Alderney Airport is made of Poaceae.",
                [("Alderney_Airport", "1stRunwaySurfaceType", "Poaceae")])
    assert f.ok
    assert F.check("Alan Bean was the Mayor. Then Alan Bean flew.", [("Alan_Bean", "x", "Alan_Bean")],
                   known_entities=KNOWN).ok


def test_realized_literal_forms_count_as_mentions():
    date = '"1871-01-01"^^<' + XSD + 'date>'
    f = F.check("The club was founded on 1 January 1871.", [("<" + DBR + "Club>", "<x:founded>", date)],
                label=lambda t: "The club" if t.endswith("Club>") else None)
    assert f.ok and f.spans[date] == [(24, 38)]
    for text in ("founded on January 1st, 1871", "founded on 1871-01-01", "founded on the 1st of January 1871"):
        assert F.check(text, [("x", "p", "1871-01-01")]).omissions == ["x"]  # the date is found, "x" is not
    length = ("ALCO_RS-3", "length", "17068.8 (millimetres)")
    for text, surface in (("The ALCO RS-3 is 17,068.8 millimetres long.", "17,068.8 millimetres"),
                          ("The ALCO RS-3 is 17068.8 mm long.", "17068.8"),
                          ("The ALCO RS-3 is about 17,069 mm long.", "17,069")):
        f = F.check(text, [length])
        assert f.ok, text
        assert [text[a:b] for a, b in f.spans[length[2]]] == [surface]
    typed = '"2.5E9"^^<http://dbpedia.org/datatype/euro>'
    assert F.check("Its revenue is 2.5 billion euros.", [("<" + DBR + "X>", "<x:revenue>", typed)],
                   label=lambda t: "Its revenue" if t.startswith("<") else None).ok
    # normalized entity names: underscores, qualifier dropped, case, possessive, dots of initials
    f = F.check("andra's genre is Rhythm and blues; Abraham A Ribicoff agrees.",
                [("Andra_(singer)", "genre", "Rhythm_and_blues"), ("Abraham_A._Ribicoff", "x", "Rhythm_and_blues")])
    assert f.ok
    assert f.text[slice(*f.spans["Andra_(singer)"][0])] == "andra"


def test_summarize_counts_add_up():
    fs = [F.check("Alan Bean was born in Wheeler, Texas, and flew on Apollo 12.", BEAN, known_entities=KNOWN),
          F.check("Alan Bean was born in Wheeler, Texas.", BEAN, known_entities=KNOWN),
          F.check("Buzz Aldrin flew on Apollo 12 in 1969.", BEAN, known_entities=KNOWN)]
    n = F.summarize(fs)
    assert n["texts"] == 3 and n["triples"] == 6 and n["terms"] == 9
    assert n["omissions"] == 3 and n["triples_with_omission"] == 3  # Apollo_12; Alan_Bean and Wheeler
    assert n["hallucinations"] == 2 == n["hallucinated_entities"] + n["hallucinated_numbers"]
    assert n["texts_failing"] == 2 and n["omission_rate"] == 0.5 and n["failing_rate"] == round(2 / 3, 4)


@pytest.fixture(scope="module")
def dev():
    return [e for e in read_entries([DEV]) if e.references]


def test_real_webnlg_entries(dev):
    known = F.KnownEntities({t for e in dev for s, _, o in e.triples for t in (s, o)})
    by_key = {(e.category, e.eid): e for e in dev}
    alco = next(e for e in dev if ("ALCO_RS-3", "length", "17068.8 (millimetres)") in e.triples)
    for r in alco.references:
        f = F.check(r, alco.triples, known_entities=known)
        assert "17068.8 (millimetres)" not in f.omissions, r
    # the template verbalizer's outputs: every subject and object realized
    from kgllm.corpus.verbalize import TemplateVerbalizer

    v = TemplateVerbalizer()
    sample = list(by_key.values())[::40]
    findings = [F.check(v.verbalize(e.triples), e.triples, known_entities=known) for e in sample]
    assert sum(len(f.omissions) for f in findings) == 0
    n = F.summarize(findings)
    assert n["hallucination_rate"] < 0.02
    # a reference with its object dropped is caught
    e = next(e for e in dev if len(e.triples) == 1 and F.check(e.references[0], e.triples).ok)
    s, p, o = e.triples[0]
    f = F.check(e.references[0], e.triples)
    a, b = f.spans[o][0]
    assert F.check(e.references[0][:a] + e.references[0][b:], e.triples).omissions == [o]
