"""Question shapes beyond one- and two-hop lookups, answered over the bundled DBpedia sample with the DBpedia
ontology's labels and schema: a class-constrained list, a count, yes/no, a superlative, a lookup from a literal,
a paraphrased relation and a category; each answer cites the triples behind it. Also: the candidate queries'
SPARQL is built from escaped terms only, so a question cannot change a query.

The graph is real third-party data (examples/data/dbpedia-sample, ontologies/dbpedia); the questions are ours.
"""

from __future__ import annotations

import lzma
import sys
from pathlib import Path

import pytest

from kgllm.rdf import triple_id

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "data" / "dbpedia-sample"
FILES = ("labels_en.ttl.xz", "instance_types_transitive_en.ttl.xz", "mappingbased_objects_en.ttl.xz",
         "mappingbased_literals_en.ttl.xz", "article_categories_en.ttl.xz")
DBO, DBR = "http://dbpedia.org/ontology/", "http://dbpedia.org/resource/"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SCHEMA = {f"<{RDFS}label>", f"<{RDFS}domain>", f"<{RDFS}range>", f"<{RDFS}subClassOf>",
          "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"}


def R(x: str) -> str:
    return f"<{DBR}{x}>"


def build_shapes_index(root: Path, files: tuple[str, ...] = FILES) -> Path:
    """Index of the sample's core files and categories (or ``files``) + the ontology's English labels and
    schema triples (no vectors: the ranker encodes candidate texts itself)."""
    import pyoxigraph

    from kgllm.rdf import GraphWriter
    from kgllm.registry import run_stage

    index = root / "index"
    if (index / "manifest.json").exists():
        return index
    with GraphWriter(root / "sample", config={"files": list(files)}) as w:
        for f in files:
            quads = pyoxigraph.parse(lzma.open(SAMPLE / f).read(), format=pyoxigraph.RdfFormat.N_TRIPLES)
            w.add_all([(str(q.subject), str(q.predicate), str(q.object)) for q in quads], {"source": f})
    onto = pyoxigraph.parse(lzma.open(ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz").read(),
                            format=pyoxigraph.RdfFormat.RDF_XML)
    keep = []
    for q in onto:
        s, p, o = str(q.subject), str(q.predicate), str(q.object)
        if p in SCHEMA and s.startswith("<" + DBO) and (not o.startswith('"') or o.endswith("@en")):
            keep.append((s, p, o))
    with GraphWriter(root / "ontology") as w:
        w.add_all(keep, {"source": "dbo.owl.xz (English labels and schema)"})
    run_stage("index", [root / "sample", root / "ontology"], index, {"vector": {"enabled": False}})
    return index


@pytest.fixture(scope="module")
def shapes(session_tmp):
    from kgllm.ask.answer import Answerer

    return Answerer.from_dir(build_shapes_index(session_tmp / "shapes"))


def _values(out) -> set[str]:
    return {a["value"] for a in out["answers"]}


def _cited(out) -> set[tuple[str, str, str]]:
    return {(c["s"], c["p"], c["o"]) for c in out["citations"]}


def _ids_ok(out) -> bool:
    return all(c["id"] == triple_id(c["s"], c["p"], c["o"]) for c in out["citations"])


def test_class_constrained_list(shapes):
    out = shapes.ask("Which companies are members of SkyTeam?")
    assert out["supported"] and out["query"]["shape"] == "inverse"
    assert _values(out) == {DBR + x for x in ("China_Airlines", "KLM", "Korean_Air", "Northwest_Airlines")}
    assert f"<{DBO}Company>" in out["sparql"] and out["total"] == 4
    alliance = f"<{DBO}alliance>"
    assert {(R(x), alliance, R("SkyTeam")) for x in ("China_Airlines", "KLM", "Korean_Air",
                                                     "Northwest_Airlines")} <= _cited(out)
    assert _ids_ok(out)


def test_count(shapes):
    out = shapes.ask("How many hub airports does Lufthansa have?")
    assert out["shape"] == "count" and out["answer"] == "2" and out["answers"][0]["value"] == "2"
    assert _cited(out) == {(R("Lufthansa"), f"<{DBO}hubAirport>", R(x)) for x in ("Frankfurt_Airport",
                                                                                 "Munich_Airport")}
    # The imperative LC-QuAD writes ("Count the ..."), and a class word after the count words: cars are means of
    # transportation (the article Car is no answer's type).
    made = [(R(x), f"<{DBO}assembly>", R("Uusikaupunki")) for x in ("Opel_Calibra", "Saab_9000", "Saab_96")]
    for q in ("Count the number of cars made in Uusikaupunki.", "How many cars were made in Uusikaupunki?"):
        cars = shapes.ask(q)
        assert cars["shape"] == "count" and cars["answer"] == "3" and f"<{DBO}MeanOfTransportation>" in cars["sparql"]
        assert set(made) <= _cited(cars)
    people = shapes.ask("Count the people who were born in Berlin.")
    assert people["shape"] == "count" and people["answer"] == "1"
    assert (R("Erich_Marcks"), f"<{DBO}birthPlace>", R("Berlin")) in _cited(people)


def test_yes_no(shapes):
    yes = shapes.ask("Is Frankfurt Airport a hub airport of Lufthansa?")
    assert yes["shape"] == "yes_no" and yes["answer"] == "yes" and _values(yes) == {"true"}
    assert _cited(yes) == {(R("Lufthansa"), f"<{DBO}hubAirport>", R("Frankfurt_Airport"))}
    assert yes["sparql"].startswith("ASK")
    no = shapes.ask("Is Munich Airport a hub airport of KLM?")
    assert no["shape"] == "yes_no" and no["answer"] == "no" and _values(no) == {"false"}
    # "No" cites what the graph holds instead.
    assert (R("KLM"), f"<{DBO}hubAirport>", R("Amsterdam_Airport_Schiphol")) in _cited(no)


@pytest.mark.parametrize("question, order, winner, prop", [
    ("Which company has the most employees?", "DESC", "Lufthansa", "numberOfEmployees"),
    # Nothing in the question names dbo:manufacturer; the members whose production start years fit
    # "began production earliest" are Saab's models.
    ("Of Saab Automobile's models, which one began production earliest?", "ASC", "Saab_96", "productionStartYear"),
])
def test_superlative(shapes, question, order, winner, prop):
    out = shapes.ask(question)
    assert out["shape"] == "superlative" and f"ORDER BY {order}(?v) LIMIT 1" in out["sparql"]
    assert _values(out) == {DBR + winner}
    assert any(c["p"] == f"<{DBO}{prop}>" and c["s"] == R(winner) for c in out["citations"])


def test_a_class_word_after_which_asks_for_members_even_where_it_names_an_article(shapes):
    # "car" links the article Car; after "Which" it asks for things of a class (WordNet: car ~ automobile,
    # which the data types as means of transportation).
    out = shapes.ask("Which car started production last?")
    assert out["shape"] == "superlative" and "ORDER BY DESC(?v) LIMIT 1" in out["sparql"]
    assert f"<{DBO}MeanOfTransportation>" in out["sparql"] and _values(out) == {DBR + "Saab_9-3"}
    assert any(c["p"] == f"<{DBO}productionStartYear>" and c["s"] == R("Saab_9-3") for c in out["citations"])
    listed = shapes.ask("Which cars were made in Uusikaupunki?")
    assert listed["query"]["shape"] == "inverse" and f"<{DBO}MeanOfTransportation>" in listed["sparql"]
    assert _values(listed) == {DBR + x for x in ("Opel_Calibra", "Saab_9000", "Saab_96")}
    assert {(R(x), f"<{DBO}assembly>", R("Uusikaupunki")) for x in ("Opel_Calibra", "Saab_9000", "Saab_96")} \
        <= _cited(listed)


def test_a_class_word_that_names_no_class_asks_for_its_members_or_kinds(shapes):
    # No class is called "vehicle" or "people". WordNet: people has person as its members; vehicle's kinds
    # (car, aircraft, ship, rocket, ...) name classes, most of them means of transportation.
    from kgllm.ask.understand import _wordnet_kinds, _wordnet_members

    assert "person" in _wordnet_members("people")
    assert {"car", "aircraft", "ship"} <= set(_wordnet_kinds("vehicle"))
    listed = shapes.ask("Which vehicles were made in Uusikaupunki?")
    assert listed["query"]["shape"] == "inverse" and f"<{DBO}MeanOfTransportation>" in listed["sparql"]
    assert _values(listed) == {DBR + x for x in ("Opel_Calibra", "Saab_9000", "Saab_96")}
    people = shapes.ask("Which people were born in Berlin?")
    assert f"<{DBO}Person>" in people["sparql"] and _values(people) == {DBR + "Erich_Marcks"}
    assert (R("Erich_Marcks"), f"<{DBO}birthPlace>", R("Berlin")) in _cited(people)
    # Anywhere in the question, not only after "which": the people are persons.
    last = shapes.ask("Of all the people in the data, who was born last?")
    assert last["shape"] == "superlative" and f"<{DBO}Person>" in last["sparql"]
    assert _values(last) == {DBR + "Walter_Warlimont"}
    assert any(c["p"] == f"<{DBO}birthDate>" and c["s"] == R("Walter_Warlimont") for c in last["citations"])


def test_a_name_the_lexicon_lacks_links_through_its_wordnet_synonym(shapes):
    # The graph calls it World War II; WordNet gives "Second World War" as its synonym. The name wins over what
    # the linker made of its first word.
    out = shapes.ask("Who fought in the Second World War?")
    assert _values(out) == {DBR + "Erich_Marcks", DBR + "Walter_Warlimont"}
    assert {(R(x), f"<{DBO}battle>", R("World_War_II")) for x in ("Erich_Marcks", "Walter_Warlimont")} <= _cited(out)


def test_lookup_from_a_literal(shapes):
    out = shapes.ask("Which book has the ISBN 978-0-385-33826-4?")
    assert out["query"]["shape"] == "literal" and _values(out) == {DBR + "Impossible_(novel)"}
    assert (R("Impossible_(novel)"), f"<{DBO}isbn>", '"978-0-385-33826-4"') in _cited(out) and _ids_ok(out)


def test_paraphrased_relation(shapes):
    # No label or curated phrasing of dbo:manufacturer says "builds".
    out = shapes.ask("Who builds the Saab 9000?")
    assert _values(out) == {DBR + "Saab_Automobile"}
    assert _cited(out) == {(R("Saab_9000"), f"<{DBO}manufacturer>", R("Saab_Automobile"))}


def test_a_verb_matches_a_relation_through_wordnet(shapes):
    # "runs" shares no word with dbo:leaderName; WordNet relates run (operate, lead) to "leader" only through
    # "lead": the verb's synonyms and their derivations count, at a discount.
    from kgllm.ask.question import related_forms

    assert "lead" in related_forms("runs") and "automobile" not in related_forms("cars")  # verbs only
    out = shapes.ask("Who runs the city of Rome?")
    assert _values(out) == {DBR + "Ignazio_Marino"}
    assert _cited(out) == {(R("Rome"), f"<{DBO}leaderName>", R("Ignazio_Marino"))}


def test_category(shapes):
    out = shapes.ask("List the members of the category motor vehicle manufacturers of Finland.")
    cat = "<http://dbpedia.org/resource/Category:Motor_vehicle_manufacturers_of_Finland>"
    assert _values(out) == {DBR + x for x in ("Elcat_Electric_Vehicles", "Korvensuu_(car)", "Sisu_Auto", "Valmet",
                                              "Valmet_Automotive")}
    assert {(c["p"], c["o"]) for c in out["citations"]} == {("<http://purl.org/dc/terms/subject>", cat)}
    assert len(out["citations"]) == 5 and _ids_ok(out)


def test_a_category_named_in_other_words(shapes):
    """A category whose every word the question uses, in another order and form, names the set asked for;
    not when the question names a thing beyond its words, nor in a yes/no question."""
    cat = "<http://dbpedia.org/resource/Category:Government-owned_airlines>"
    out = shapes.ask("Which airlines are owned by a government?")
    members = {c["s"] for c in out["citations"] if (c["p"], c["o"]) == ("<http://purl.org/dc/terms/subject>", cat)}
    assert members and _values(out) == {m[1:-1] for m in members} and _ids_ok(out)
    assert DBR + "Air_India" in _values(out)
    und = shapes.retriever.understander
    out = shapes.ask("Which companies have been convicted of price fixing?")   # convicted ~ convictions
    assert "<http://dbpedia.org/resource/Category:Price_fixing_convictions>" in und.word_categories
    assert _values(out) == {c["s"][1:-1] for c in out["citations"] if c["o"].endswith("Category:Price_fixing_convictions>")}
    # "romance novels" is beyond Novels by Danielle Steel: the romance novels among her books, not all of them.
    shapes.ask("Which of Danielle Steel's books are romance novels?")
    assert not {t for t in und.word_categories if "Danielle_Steel" in t}
    shapes.ask("Is Air India owned by a government?")
    assert not und.word_categories


def test_a_category_named_by_its_words_takes_the_names_and_class_among_them(shapes):
    """A category the question names by its words stands for the mentions among them: a name inside it
    ("... manufacturers come from Finland") is no second constraint, and its class word is its members' class
    whatever the data types them as (an intersection with that class would drop members)."""
    subject = "<http://purl.org/dc/terms/subject>"
    out = shapes.ask("Which motor vehicle manufacturers come from Finland?")
    cat = "<http://dbpedia.org/resource/Category:Motor_vehicle_manufacturers_of_Finland>"
    assert _values(out) == {DBR + x for x in ("Elcat_Electric_Vehicles", "Korvensuu_(car)", "Sisu_Auto", "Valmet",
                                              "Valmet_Automotive")}
    assert {(c["p"], c["o"]) for c in out["citations"]} == {(subject, cat)} and _ids_ok(out)
    out = shapes.ask("Which museums are devoted to ancient Rome?")
    cat = "<http://dbpedia.org/resource/Category:Museums_of_Ancient_Rome>"
    assert _values(out) == {DBR + "Getty_Villa", DBR + "Glyptothek"}
    assert {(c["p"], c["o"]) for c in out["citations"]} == {(subject, cat)} and _ids_ok(out)


def test_infobox_row_nodes_are_not_answers(shapes):
    # dbr:Saab_9000__1 ... are the untyped rows of the car's engine table: a way through, never an answer.
    from kgllm.ask.candidates import Mention
    from kgllm.rdf import is_auxiliary

    assert is_auxiliary(R("Saab_9000__1")) and not is_auxiliary(R("Saab_9000"))
    builder = shapes.retriever.understander.builder
    shapes.retriever._ecache = {}
    one = builder.one_hop(Mention(R("Saab_9000"), "entity", 0, 9, 1.0, "Saab 9000"), [])
    assert one and not [c for c in one if any(is_auxiliary(a) for a in c.answers)]
    assert f"<{DBO}engine>" not in {c.path[0][0] for c in one}   # its only values are such rows
    assert [t for t, _ in builder.edges(R("Saab_9000"))[(f"<{DBO}engine>", "out")]]  # (which the graph holds)
    out = shapes.ask("Which automobiles are manufactured by Saab Automobile?")
    assert _values(out) == {DBR + x for x in ("Saab_9-3", "Saab_9000", "Saab_900", "Saab_90", "Saab_96", "Saab_99")}


def test_which_year_asks_for_a_date_as_when_does(shapes):
    from kgllm.ask.question import parse_question

    for q in ("In which year was Porsche founded?", "What year did Porsche get founded?",
              "On which date did Walter Warlimont die?"):
        assert parse_question(q, []).wh == "when", q
    assert parse_question("Which airline has the most employees?", []).wh == "which"
    # The manufacturer's founding year, not who founded it (a "which" question's entity answer).
    out = shapes.ask("In which year was the manufacturer of the Saab 9000 founded?")
    assert [a["value"] for a in out["answers"]] == ["1945"]
    assert {(c["s"], c["p"]) for c in out["citations"]} == {(R("Saab_9000"), f"<{DBO}manufacturer>"),
                                                         (R("Saab_Automobile"), f"<{DBO}foundingYear>")}


def test_a_name_with_a_word_left_out_is_linked(shapes):
    out = shapes.ask("List the airlines that have a hub at Amsterdam Schiphol.")
    assert _values(out) == {DBR + x for x in ("KLM", "Northwest_Airlines", "Singapore_Airlines_Cargo")}
    hub = f"<{DBO}hubAirport>"
    assert {(R(x), hub, R("Amsterdam_Airport_Schiphol")) for x in ("KLM", "Northwest_Airlines",
                                                                  "Singapore_Airlines_Cargo")} <= _cited(out)


def test_a_quoted_value_is_a_literal_whatever_its_words_link_to(shapes):
    # "See" alone links to a class (German for lake); the quotes say the whole is a value.
    out = shapes.ask('Which university has the motto "See blue."?')
    assert _values(out) == {DBR + "University_of_Kentucky"}
    assert (R("University_of_Kentucky"), f"<{DBO}motto>", '"See blue."') in _cited(out)


def test_a_chain_needs_words_for_each_hop(shapes):
    # Danielle Steel's books have publication dates; "born" names no relation of the chain to them.
    out = shapes.ask("When was Danielle Steel born?")
    assert not out["supported"] and out["answer"] == "not in the graph"
    # A value reached through an unnamed hop is another thing's: the graph holds the population of the
    # region Le Havre is part of, not Le Havre's own.
    assert shapes.retriever.understander.edges(R("Le_Havre")).get((f"<{DBO}part>", "in"))
    out = shapes.ask("What is the population of Le Havre?")
    assert not out["supported"] and out["answer"] == "not in the graph"


def test_unanswerable_stays_not_in_the_graph(shapes):
    for q in ("What is the boiling point of Lufthansa?", "Who is the favourite poet of the Saab 9000?"):
        out = shapes.ask(q)
        assert not out["supported"] and out["answer"] == "not in the graph" and out["citations"] == []


def test_injected_sparql_is_harmless(shapes):
    before = len(list(shapes.sparql.select("SELECT ?s WHERE { ?s ?p ?o }")))
    for q in ('Which book has the ISBN "x" } ; DROP ALL ; INSERT DATA { <a> <b> <c> } #"?',
              "Is Frankfurt Airport> } ; DELETE WHERE { ?s ?p ?o } ; { a hub of Lufthansa?",
              'How many "\\" } INSERT DATA { <x> <y> <z> } #" hubs does KLM have?'):
        shapes.ask(q)
    assert len(list(shapes.sparql.select("SELECT ?s WHERE { ?s ?p ?o }"))) == before


def test_candidate_sparql_escapes_every_term():
    import pyoxigraph

    from kgllm.ask.candidates import render_select
    from kgllm.ask.sparql_templates import UnsafeValue

    evil = '"x\\" } DROP ALL { \\""'   # an N-Triples literal whose value holds quotes and braces
    store = pyoxigraph.Store()
    store.add(pyoxigraph.Quad(pyoxigraph.NamedNode(DBR + "A"), pyoxigraph.NamedNode(DBO + "p"),
                              pyoxigraph.Literal('x" } DROP ALL { "')))
    rows = list(store.query(render_select(((R("A"), f"<{DBO}p>", evil),))))
    assert len(rows) == 1 and len(store) == 1  # the literal matched as a value; nothing was dropped
    with pytest.raises(UnsafeValue):
        render_select((("<http://x/a> } DROP ALL {", f"<{DBO}p>", "?x"),))


@pytest.fixture(scope="session")
def sample_virtuoso(tmp_path_factory):
    """The private Virtuoso of the SPARQL tests (the whole DBpedia sample loaded), shared with them."""
    from test_pull_sparql import load_reference_data
    from virtuoso import shared

    with shared("kgllm-sparql", lambda: tmp_path_factory.mktemp("virtuoso"), setup=load_reference_data) as v:
        yield v


def test_endpoint_answers_and_cites_as_the_embedded_store(shapes, sample_virtuoso):
    """The same candidate queries run on a real SPARQL server (Virtuoso, which returns typed literals in its own
    canonical form) give the same answers and cite the same triples as the embedded store."""
    from kgllm.ask.answer import Answerer

    remote = Answerer(shapes.index, sparql=sample_virtuoso.endpoint)
    for q in ("Which companies are members of SkyTeam?", "How many employees does KLM have?",
              "Is Frankfurt Airport a hub airport of Lufthansa?", "Which company has the most employees?",
              "Which book has the ISBN 978-0-385-33826-4?", "How many hub airports does Lufthansa have?"):
        a, b = shapes.ask(q), remote.ask(q)
        assert a["supported"] and b["supported"], q
        assert a["answer"] == b["answer"] and _values(a) == _values(b), q
        assert [c["id"] for c in a["citations"]] == [c["id"] for c in b["citations"]], q


def test_a_ranker_that_is_not_one_is_a_clear_error(session_tmp, tmp_path):
    from kgllm.ask.answer import load_answerer
    from kgllm.errors import InputError

    index = build_shapes_index(session_tmp / "shapes")
    for bad, why in ((tmp_path / "nope", "not a directory"), (index, "not a ranker")):
        with pytest.raises(InputError, match=why):
            load_answerer(index, ranker=bad)


def test_a_count_of_different_things_is_not_the_relation_different_from(shapes):
    # "different" after "how many" asks for distinct things; the graph also has owl:differentFrom links.
    out = shapes.ask("How many different car models does Saab Automobile make?")
    assert out["shape"] == "count" and out["answer"] == "6"
    assert {c["p"] for c in out["citations"]} == {f"<{DBO}manufacturer>"}


def test_a_value_after_called_is_the_literal_asked_about(shapes):
    # The linker sees "Porsche" inside the name; the name as written is the value the question holds.
    out = shapes.ask("Which company is officially called Dr. Ing. h.c. F. Porsche AG?")
    assert _values(out) == {DBR + "Porsche"} and out["query"]["shape"] == "literal"
    assert any(c["s"] == R("Porsche") and c["o"].startswith('"Dr. Ing. h.c. F. Porsche AG"') for c in out["citations"])
    # A name the graph does not hold changes nothing.
    other = shapes.ask("Which company is officially called Frobnicator Holdings Ltd?")
    assert other["answer"] == "not in the graph"


def test_superlatives_order_dates_and_bare_years_together():
    # DBpedia's infobox `founded` holds "1926" for one airline and "1919-10-07" for another: compared with
    # dates, a bare whole number is a year.
    from kgllm.ask.understand import _num

    xsd = "http://www.w3.org/2001/XMLSchema#"
    year, date = f'"1926"^^<{xsd}integer>', f'"1919-10-07"^^<{xsd}date>'
    assert _num(date, years=True) < _num(year, years=True)
    assert _num(year) == 1926.0  # numbers alone stay numbers
    assert _num(f'"12.5"^^<{xsd}double>', years=True) == 12.5


def test_unparsed_infobox_markup_is_no_answer():
    from kgllm.ask.understand import is_markup

    assert is_markup('"*"@en') and is_markup('"*Tokyo\\n**Haneda \\n*Detroit"@en') and is_markup('"-"')
    assert not is_markup('"Amsterdam"@en') and not is_markup(R("KLM")) and not is_markup('"1926"')


def test_a_chain_back_to_the_named_entity_does_not_answer_with_it(shapes):
    # "Which other airlines share a hub airport with KLM?": KLM -hubAirport-> ?m <-hubAirport- ?x.
    from kgllm.ask.candidates import VAR_M, VAR_X, Query

    u = shapes.retriever.understander
    hub = f"<{DBO}hubAirport>"
    q = Query("two_hop", ((R("KLM"), hub, VAR_M), (VAR_X, hub, VAR_M)), "thing whose hub airport is the hub "
              "airport of it", (R("KLM"),), ((hub, "out"), (hub, "in")), R("KLM"), set(), 1.0)
    res = u.run(q)
    assert res is not None and res.answers and R("KLM") not in res.answers
    assert f"FILTER(?x != <{DBR}KLM>)" in u.sparql.last_query


def test_what_is_the_number_of_is_a_count(shapes):
    out = shapes.ask("What is the number of car models made by Saab Automobile?")
    assert out["shape"] == "count" and out["answer"] == "6"
    # A property that holds a number is still its value.
    emp = shapes.ask("What is the number of employees of KLM?")
    assert emp["shape"] != "count" and emp["answers"][0]["value"] == "32505"


def test_a_long_number_is_a_literal_mention(shapes):
    out = shapes.ask("Which book has the OCLC number 15251531?")
    assert _values(out) == {DBR + "Kaleidoscope_(novel)"}
    assert (R("Kaleidoscope_(novel)"), f"<{DBO}oclc>", '"15251531"') in _cited(out)


def test_a_phrasal_verb_matches_a_relation_through_wordnet(shapes):
    # "set up" is one verb to WordNet (establish, found: founder), not "set" and "up".
    from kgllm.ask.question import content_tokens, related_forms

    toks = content_tokens("Who set up the sports car maker Porsche?")
    assert toks[0].text == "set_up" and "founder" in related_forms("set_up")
    out = shapes.ask("Who set up the sports car maker Porsche?")
    assert _values(out) == {DBR + "Ferdinand_Porsche"}


def test_who_asks_for_an_agent(shapes):
    # "styled" shares a word with dbo:bodyStyle, but "who" asks for a person: WordNet's senses of the
    # relation's range or head noun ("style") say a body style is none.
    out = shapes.ask("Who styled the Opel Calibra?")
    assert _values(out) == {DBR + "Erhard_Schnell"}
    assert _cited(out) == {(R("Opel_Calibra"), f"<{DBO}designer>", R("Erhard_Schnell"))}


def test_yes_no_possessive_is_no_claim(shapes):
    # "Danielle Steel's novel Sisters" names the book; its author being Danielle Steel confirms nothing.
    no = shapes.ask("Was Danielle Steel's novel Sisters published by Dell Publishing?")
    assert no["shape"] == "yes_no" and no["answer"] == "no"
    yes = shapes.ask("Was Danielle Steel's novel Sisters published by Random House?")
    assert yes["answer"] == "yes"
    assert _cited(yes) == {(R("Sisters_(Steel_novel)"), f"<{DBO}publisher>", R("Random_House"))}
    # A yes/no question may name the very answer of the relation it checks.
    assert shapes.ask("Is Cathay Pacific a member of Oneworld?")["answer"] == "yes"


@pytest.mark.parametrize("name", ["handwritten_shapes.jsonl", "handwritten_shapes_b.jsonl",
                                  "handwritten_shapes_c.jsonl", "handwritten_shapes_d.jsonl",
                                  "handwritten_shapes_e.jsonl", "handwritten_shapes_f.jsonl"])
def test_handwritten_gold_answers_match_the_graph(name, capsys):
    """Each hand-written set's gold answers are what its gold SPARQL query gives over the bundled graph (set A
    also keeps its minimum number of questions per shape)."""
    import check_handwritten_shapes as chk

    store = chk.load_store()
    path = ROOT / "examples" / "data" / "questions" / name
    assert chk.check(store, path, minimums=name == "handwritten_shapes.jsonl") == 0, capsys.readouterr().out
    assert "all gold answers match" in capsys.readouterr().out


@pytest.fixture(scope="module")
def with_infobox(session_tmp):
    """The shapes index plus the sample's raw infobox properties (dbp:, many of them strings)."""
    from kgllm.ask.answer import Answerer

    return Answerer.from_dir(build_shapes_index(session_tmp / "shapes-infobox",
                                                (*FILES, "infobox_properties_en.ttl.xz")))


def test_a_count_counts_things_not_names(with_infobox):
    # The best candidates are relations of British Airways that hold names (dbp:frequentFlyer "Executive
    # Club", dbp:airline "British Airways"): counting them answers nothing asked.
    out = with_infobox.ask("How many passengers did British Airways fly in 2015?")
    assert not out["supported"] and out["answer"] == "not in the graph"


def test_when_takes_a_date_written_as_a_plain_string():
    # Raw infobox values are often untyped ("1886-10-28" for the Statue of Liberty's dbp:beginningDate).
    from kgllm.ask.understand import _wh_agreement

    xsd = "http://www.w3.org/2001/XMLSchema#"
    assert _wh_agreement("when", {'"1886-10-28"'}) == _wh_agreement("when", {f'"1886-10-28"^^<{xsd}date>'}) > 0
    assert _wh_agreement("when", {'"1886"'}) > 0
    assert _wh_agreement("when", {'"Lady Liberty"@en'}) < 0 and _wh_agreement("when", {'"18-86"'}) < 0


def test_an_office_asks_for_the_name_beside_its_title(shapes, with_infobox):
    # DBpedia qualifies a place's leaderName by the leaderTitle beside it (Rome: "Mayor", Ignazio Marino). A
    # question word naming the title asks for the name, though no word names "leader name"...
    out = shapes.ask("Who governs Rome as mayor?")
    assert _values(out) == {DBR + "Ignazio_Marino"}
    assert _cited(out) == {(R("Rome"), f"<{DBO}leaderName>", R("Ignazio_Marino"))}
    # ... and where the question names the office itself (the infobox links Rome to Mayor_of_Rome by
    # dbp:leaderTitle), its holder is the name beside that title: a chain from the office, both hops cited.
    out = with_infobox.ask("Who is the mayor of Rome?")
    assert _values(out) == {DBR + "Ignazio_Marino"} and _ids_ok(out)
    assert _cited(out) == {(R("Rome"), "<http://dbpedia.org/property/leaderTitle>", R("Mayor_of_Rome")),
                           (R("Rome"), f"<{DBO}leaderName>", R("Ignazio_Marino"))}
    # A title the place does not have answers nothing through it.
    assert with_infobox.ask("Who is the bishop of Rome?")["answer"] == "not in the graph"
