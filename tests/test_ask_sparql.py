"""SPARQL templates (queries/ask/*.rq) on the embedded pyoxigraph store of the real DBpedia sample: results,
and injection attempts through every kind of parameter, which are refused or inserted as inert data."""

from __future__ import annotations

import pytest

from kgllm.ask.sparql_templates import (
    TEMPLATES_DIR,
    SparqlRunner,
    UnsafeValue,
    load_template,
    sparql_iri,
    sparql_literal,
)
from kgllm.rdf import DBO, DBR, load_store


@pytest.fixture(scope="module")
def runner(dbpedia_graph):
    return SparqlRunner(store=load_store(dbpedia_graph))


def test_every_template_declares_its_parameters():
    names = sorted(p.stem for p in TEMPLATES_DIR.glob("*.rq"))
    assert {"one_hop", "one_hop_inverse", "two_hop", "count", "list_typed", "by_label"} <= set(names)
    for n in names:
        t = load_template(n)
        assert t.params and all(k in ("iri", "literal") for k in t.params.values())
        assert t.text.lstrip().startswith("#")  # the header documents the template


def test_templates_answer_on_the_real_sample(runner):
    rows = runner.run("one_hop", subject=DBR + "Lufthansa", predicate=DBO + "hubAirport")
    assert [r["o"] for r in rows] == [f"<{DBR}Frankfurt_Airport>", f"<{DBR}Munich_Airport>"]
    rows = runner.run("one_hop_inverse", object=DBR + "Lufthansa", predicate=DBO + "parentCompany")
    assert f"<{DBR}Lufthansa_Cargo>" in [r["s"] for r in rows]
    rows = runner.run("two_hop", subject=DBR + "Saab_9000", first=DBO + "manufacturer", second=DBO + "locationCity")
    assert [(r["mid"], r["o"]) for r in rows] == [(f"<{DBR}Saab_Automobile>", f"<{DBR}Trollhättan>")]
    assert runner.run("count", subject=DBR + "Lufthansa", predicate=DBO + "hubAirport")[0]["n"].startswith('"2"')
    rows = runner.run("list_typed", **{"class": DBO + "Company", "predicate": DBO + "hubAirport",
                                       "object": DBR + "Frankfurt_Airport"})
    assert f"<{DBR}Lufthansa>" in [r["s"] for r in rows]
    assert [r["s"] for r in runner.run("by_label", label='"Lufthansa"@en')] == [f"<{DBR}Lufthansa>"]


def test_escaping_refuses_or_neutralises_injection(runner):
    n = len(runner.store)
    for bad in ("http://x> } ; DROP ALL ; SELECT * { ?s ?p ?o", "http://x/a b", 'http://x/"', "http://x/{y}",
                "http://x/\\u003e", "", "http://x/\n"):
        with pytest.raises(UnsafeValue):
            sparql_iri(bad)
        with pytest.raises(UnsafeValue):
            runner.run("one_hop", subject=bad, predicate=DBO + "hubAirport")
    assert sparql_literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    with pytest.raises(UnsafeValue):
        sparql_literal("x", lang="en } DROP ALL")
    # A malicious label is data: the query keeps its shape, finds nothing and changes nothing.
    for label in ['Lufthansa"@en } ; DROP ALL ; SELECT * WHERE { ?s ?p ?o', "x\" . ?s ?p ?o . #",
                  "Lufthansa'} {{label}}", '"""Lufthansa"""']:
        assert runner.run("by_label", label=label) == []
        # The query is the template with one escaped string literal in the slot, nothing else.
        assert runner.last_query == load_template("by_label").render(label=label)
        assert runner.last_query.count("DISTINCT ?s WHERE { ?s rdfs:label ") == 1
    with pytest.raises(Exception, match="unknown"):
        runner.run("by_label", label="x", extra="y")
    assert len(runner.store) == n


def test_runner_needs_exactly_one_backend():
    with pytest.raises(Exception, match="exactly one"):
        SparqlRunner()
