"""Entity lexicon and linker: planted mentions in real DBpedia data, a WordNet graph in the contract
vocabulary (plural lemma via morphy), normalization, fuzzy matching, type compatibility, WebNLG texts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from kgllm.index.graph import GraphIndex
from kgllm.index.lexicon import EntityLexicon, local_name, morphy, normalize_label
from kgllm.index.linker import Linker
from kgllm.index.stage import LinkerConfig
from kgllm.rdf import DBO, DBR, DC, KGWN, ONTOLEX, RDF, RDFS, WN, GraphWriter, iter_graph

LIT = '"{}"@en'


def _iri(x: str) -> str:
    return f"<{x}>"


# Real WordNet 3.0 synsets (offsets from the data files): (offset-pos, identifier, label, lemmas).
SYNSETS = [
    ("02084071-n", "dog.n.01", "dog", ["dog", "domestic dog", "Canis familiaris"]),
    ("10114209-n", "frump.n.01", "frump", ["frump", "dog"]),
    ("07676602-n", "frank.n.02", "frank", ["frank", "hot dog", "dog"]),
    ("02083346-n", "canine.n.02", "canine", ["canine", "canid"]),
    ("01317541-n", "domestic_animal.n.01", "domestic animal", ["domestic animal"]),
    ("02330245-n", "mouse.n.01", "mouse", ["mouse"]),
    ("02001858-v", "chase.v.01", "chase", ["chase", "dog"]),
]
HYPERNYMS = [("02084071-n", "02083346-n"), ("02084071-n", "01317541-n")]


def write_tiny_wordnet(out: Path) -> Path:
    """A WordNet graph in the pull.wordnet contract vocabulary (synsets, entries, senses)."""
    pos_names = {"n": "noun", "v": "verb"}
    triples = []
    for key, ident, label, lemmas in SYNSETS:
        syn = _iri(KGWN + key)
        pos = key[-1]
        triples += [(syn, _iri(RDF + "type"), _iri(ONTOLEX + "LexicalConcept")),
                    (syn, _iri(RDF + "type"), _iri(WN + "Synset")),
                    (syn, _iri(WN + "partOfSpeech"), _iri(WN + pos_names[pos])),
                    (syn, _iri(DC + "identifier"), f'"{ident}"'),
                    (syn, _iri(RDFS + "label"), LIT.format(label))]
        for i, lemma in enumerate(lemmas):
            entry = KGWN + "entry/" + quote(lemma) + "-" + pos
            sense = _iri(KGWN + "sense/" + quote(f"{lemma.lower().replace(' ', '_')}%{key}:{i}"))
            triples += [(_iri(entry), _iri(RDF + "type"), _iri(ONTOLEX + "LexicalEntry")),
                        (_iri(entry), _iri(ONTOLEX + "canonicalForm"), _iri(entry + "#form")),
                        (_iri(entry + "#form"), _iri(ONTOLEX + "writtenRep"), LIT.format(lemma)),
                        (_iri(entry), _iri(RDFS + "label"), LIT.format(lemma)),
                        (_iri(entry), _iri(ONTOLEX + "sense"), sense),
                        (sense, _iri(RDF + "type"), _iri(ONTOLEX + "LexicalSense")),
                        (sense, _iri(ONTOLEX + "isLexicalizedSenseOf"), syn)]
    for a, b in HYPERNYMS:
        triples += [(_iri(KGWN + a), _iri(WN + "hypernym"), _iri(KGWN + b)),
                    (_iri(KGWN + b), _iri(WN + "hyponym"), _iri(KGWN + a))]
    with GraphWriter(out, config={"test": "tiny wordnet"}) as g:
        g.add_all(triples, {"source": "test", "what": "hand-written WordNet subset"})
    return out


@pytest.fixture(scope="module")
def dbp(dbpedia_graph):
    g, _ = GraphIndex.build(iter_graph(dbpedia_graph, with_provenance=True))
    lex = EntityLexicon.build(g)
    return g, lex, Linker(lex, g)


@pytest.fixture(scope="module")
def wn(tmp_path_factory):
    d = write_tiny_wordnet(tmp_path_factory.mktemp("wn") / "graph")
    g, _ = GraphIndex.build(iter_graph(d, with_provenance=True))
    lex = EntityLexicon.build(g)
    return g, lex, Linker(lex, g)


def test_normalize_label_and_local_name():
    assert normalize_label("  Zürich-Airport's ") == "zurich airport s"
    assert normalize_label("SÃO PAULO") == normalize_label("são paulo")
    assert local_name("<http://dbpedia.org/resource/Aarhus_Airport>") == "Aarhus Airport"
    assert local_name("<http://dbpedia.org/ontology/birthPlace>") == "birth place"
    assert "dog" in morphy("dogs") and "mouse" in morphy("mice")


@pytest.mark.parametrize("text, surface, entity", [
    ("Where is the headquarters of British Airways?", "British Airways", "British_Airways"),
    ("Which airline is KLM's partner?", "KLM", "KLM"),
    ("Is the colosseum in ROME?", "ROME", "Rome"),
    ("Tell me about singapore airlines.", "singapore airlines", "Singapore_Airlines"),
    ("who designed the porsch 911", "porsch", "Porsche"),  # a typo: fuzzy match
])
def test_links_planted_mentions_in_dbpedia(dbp, text, surface, entity):
    _g, _lex, linker = dbp
    ms = linker.link(text)
    got = {m.surface: m for m in ms}
    assert surface in got, [m.surface for m in ms]
    assert got[surface].iri == _iri(DBR + entity)
    assert got[surface].start == text.index(surface)


def test_longest_match_wins_and_stopwords_are_not_linked(dbp):
    _g, _lex, linker = dbp
    ms = linker.link("Is the Singapore Airlines hub in the city of Singapore?")
    assert [m.iri for m in ms][:1] == [_iri(DBR + "Singapore_Airlines")]
    assert all(m.surface.lower() not in ("is", "the", "in", "of") for m in ms)


def test_wordnet_lemma_in_plural_form_links_to_synset(wn):
    _g, _lex, linker = wn
    ms = linker.link("Do dogs chase mice?")
    by = {m.surface: m for m in ms}
    dogs = by["dogs"]
    assert dogs.candidates[0].match == "morph"
    # All three noun senses of "dog" plus the verb are candidates; dog.n.01 (most connected) wins.
    assert dogs.iri == _iri(KGWN + "02084071-n")
    assert {_iri(KGWN + "10114209-n"), _iri(KGWN + "07676602-n")} <= {c.iri for c in dogs.candidates}
    assert by["mice"].iri == _iri(KGWN + "02330245-n")  # irregular plural from WordNet's exception list
    # A multiword lemma with an inflected head.
    assert linker.link("I ate two hot dogs")[-1].iri == _iri(KGWN + "07676602-n")


def test_type_compatibility_reorders_candidates(wn):
    _g, _lex, linker = wn
    verb = linker.link("they dog him", types=[_iri(WN + "verb")])
    assert verb[0].iri == _iri(KGWN + "02001858-v")
    noun = linker.link("they dog him", types=[_iri(WN + "noun")])
    assert noun[0].iri == _iri(KGWN + "02084071-n")


def test_lexicon_save_load_round_trip(wn, tmp_path):
    g, lex, _ = wn
    counts = lex.save(tmp_path)
    assert counts["entries_by_source"]["lemma"] > 0
    lex2 = EntityLexicon.load(tmp_path)
    assert dict(lex2.keys) == dict(lex.keys)
    assert lex2.labels == lex.labels
    assert Linker(lex2, g).link("dogs")[0].iri == _iri(KGWN + "02084071-n")


def test_redirect_and_label_update(dbp):
    g, lex, linker = dbp
    rome = _iri(DBR + "Rome")
    red = (_iri(DBR + "Eternal_City"), _iri(DBO + "wikiPageRedirects"), rome)
    rows, _ = g.upsert([red], {"source": "test"})
    lex.update_origins(g, lex.origins_of_rows(g, rows))
    linker.invalidate()
    assert linker.link("Visit the Eternal City")[0].iri == rome
    # Delete the redirect: the name is gone with it.
    origins = lex.origins_of_rows(g, rows)
    g.delete(rows)
    lex.update_origins(g, origins)
    assert all(m.iri != rome for m in linker.link("Visit the Eternal City"))


# Real WebNLG 2020 dev entries (shared/data/webnlg/dev/1triples/{Airport,Astronaut,Food,City}_allSolutions.xml,
# the first lexicalisation of each): text, modified triple. Gold entities: the triple's resource terms.
WEBNLG = [
    ("The leader of Aarhus is Jacob Bundsgaard.", "Aarhus | leader | Jacob_Bundsgaard"),
    ("Aarhus Airport's runway length is 2702.0.", "Aarhus_Airport | runwayLength | 2702.0"),
    ("The United States Navy awarded the Distinguished Service Medal to Alan Shepard.",
     "Alan_Shepard | award | Distinguished_Service_Medal_(United_States_Navy)"),
    ("Alan Shepard died in California.", "Alan_Shepard | deathPlace | California"),
    ('The alternative name for Ajoblanco is "Ajo blanco".', 'Ajoblanco | alternativeName | "Ajo blanco"'),
    ("Abilene is a part of Texas.", "Abilene,_Texas | isPartOf | Texas"),
]


def _webnlg_terms(mtriple: str) -> tuple[str, str, str]:
    s, p, o = (x.strip() for x in mtriple.split(" | "))
    obj = _iri(DBR + o) if not (o.startswith('"') or o[0].isdigit()) else '"' + o.strip('"') + '"'
    return _iri(DBR + quote(s, safe=",()_")), _iri(DBO + p), obj.replace(o, quote(o, safe=",()_")) \
        if obj.startswith("<") else obj


def test_links_webnlg_entities(tmp_path):
    with GraphWriter(tmp_path / "g") as w:
        w.add_all([_webnlg_terms(t) for _x, t in WEBNLG], {"source": "webnlg-dev"})
    g, _ = GraphIndex.build(iter_graph(tmp_path / "g", with_provenance=True))
    linker = Linker(EntityLexicon.build(g), g)
    for text, t in WEBNLG:
        gold = {x for x in _webnlg_terms(t) if x.startswith("<" + DBR)}
        got = {m.iri for m in linker.link(text)}
        assert gold <= got, (text, gold - got)


@pytest.mark.slow
def test_links_plural_lemma_in_pulled_wordnet(tmp_path):
    """The real ``pull.wordnet`` stage (dog.n.01 and its hyponyms) indexed end to end, without vectors."""
    from kgllm.index import load_index
    from kgllm.registry import run_stage

    run_stage("pull.wordnet", [], tmp_path / "wn", {"roots": ["dog.n.01"]})
    run_stage("index", [tmp_path / "wn"], tmp_path / "ix", {"vector": {"enabled": False}})
    idx = load_index(tmp_path / "ix")
    by = {m.surface: m for m in idx.link("Are puppies and corgis dogs?")}
    assert by["dogs"].iri == _iri(KGWN + "02084071-n")
    assert by["puppies"].iri == _iri(KGWN + "01322604-n")   # puppy.n.01
    assert by["corgis"].iri == _iri(KGWN + "02112826-n")    # corgi.n.01
    assert idx.label(KGWN + "02084071-n") == "dog"
    hyper = idx.triples(idx.neighbors(KGWN + "01322604-n", 1, predicates=[WN + "hypernym"]))
    assert _iri(KGWN + "02084071-n") in {t.o for t in hyper if t.s == _iri(KGWN + "01322604-n")}


def test_containing_finds_names_with_a_word_left_out():
    from kgllm.index.lexicon import EntityLexicon

    lex = EntityLexicon()
    for key, iri in (("amsterdam airport schiphol", "<a>"), ("amsterdam", "<b>"), ("schiphol amsterdam", "<c>"),
                     ("amsterdam international airport schiphol terminal", "<d>")):
        lex._add(iri, key, iri, "label", None)
    assert lex.containing(["amsterdam", "schiphol"], extra=1) == ["amsterdam airport schiphol"]  # in order
    assert lex.containing(["amsterdam", "schiphol"], extra=3) == ["amsterdam airport schiphol",
                                                                  "amsterdam international airport schiphol terminal"]
    assert lex.containing(["rotterdam"]) == [] and lex.containing([]) == []


def test_a_key_many_things_share_keeps_each_entry_once():
    # "air india" in every copy of a graph: past a few entries the duplicate check is a set, and dropping
    # and re-adding an origin keeps list and set in step.
    lex = EntityLexicon()
    for _round in range(2):
        for i in range(40):
            lex._add(f"<o{i}>", "air india", f"<e{i}>", "label", f"{i:016x}")
            lex._add(f"<o{i}>", "air india", f"<e{i}>", "label", f"{i:016x}")  # a duplicate
        assert len(lex.lookup("air india")) == 40
        for i in range(0, 40, 2):
            lex._drop(f"<o{i}>")
        assert len(lex.lookup("air india")) == 20
        for i in range(0, 40, 2):
            lex._add(f"<o{i}>", "air india", f"<e{i}>", "label", f"{i:016x}")
        assert sorted(lex.lookup("air india")) == sorted({(f"<e{i}>", "label", f"{i:016x}") for i in range(40)})
        for i in range(40):
            lex._drop(f"<o{i}>")
        assert lex.lookup("air india") == []


def test_a_possessive_s_is_no_word_of_the_span(tmp_path):
    """"Knight's Cross of the Iron Cross" is six words (seven tokens): within the linker's six-word spans."""
    name = "Knight's Cross of the Iron Cross"
    award = _iri(DBR + "Knight's_Cross_of_the_Iron_Cross")
    with GraphWriter(tmp_path / "g", config={"test": "possessive"}) as w:
        w.add_all([(award, _iri(RDFS + "label"), f'"{name}"@en'),
                   (_iri(DBR + "Erich_Marcks"), _iri(DBO + "award"), award)],
                  {"source": "test"})
    g, _ = GraphIndex.build(iter_graph(tmp_path / "g", with_provenance=True))
    lex = EntityLexicon.build(g)
    text = f"Did Erich Marcks receive the {name}?"
    ms = Linker(lex, g).link(text)
    assert [(m.surface, m.iri) for m in ms if m.iri == award] == [(name, award)]
    # Five words are too few for it.
    assert all(m.iri != award for m in Linker(lex, g, LinkerConfig(max_ngram=5)).link(text))
