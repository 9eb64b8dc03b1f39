"""Each data check catches its planted violation and passes clean data (real parsing, real index)."""

from __future__ import annotations

import pyoxigraph
import pytest

from kgllm.validate.checks import (
    CHECKS,
    TermIndex,
    datatype_fits,
    lexical_error,
    run_checks,
)
from kgllm.validate.ontology import find_cycles, load_ontologies

PREFIXES = """\
@prefix ex: <http://example.org/ex#> .
@prefix d: <http://example.org/data/> .
@prefix wn: <https://globalwordnet.github.io/schemas/wn#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

ONTOLOGY = PREFIXES + """
<http://example.org/ex> a owl:Ontology .
ex:Agent a owl:Class .
ex:Person a owl:Class ; rdfs:subClassOf ex:Agent ; owl:disjointWith ex:Place .
ex:Student a owl:Class ; rdfs:subClassOf ex:Person .
ex:Place a owl:Class .
ex:birthPlace a owl:ObjectProperty ; rdfs:domain ex:Person ; rdfs:range ex:Place .
ex:knows a owl:ObjectProperty .
ex:birthDate a owl:DatatypeProperty , owl:FunctionalProperty ; rdfs:domain ex:Person ; rdfs:range xsd:date .
ex:population a owl:DatatypeProperty ; rdfs:range xsd:integer .
"""

CLEAN = PREFIXES + """
ex:alice a ex:Person ; rdfs:label "Alice"@en ; ex:birthPlace ex:paris ; ex:birthDate "1992-02-29"^^xsd:date ;
    ex:knows ex:bob .
ex:bob a ex:Student , ex:Person ; rdfs:label "Bob" ; ex:birthPlace ex:paris ; ex:birthDate "2001-12-31"^^xsd:date .
ex:paris a ex:Place ; rdfs:label "Paris"@fr ; ex:population "2100000"^^xsd:integer .
d:A rdfs:subClassOf d:B . d:B rdfs:subClassOf d:C .
d:A rdfs:label "A" . d:B rdfs:label "B" . d:C rdfs:label "C" .
d:s1 wn:hypernym d:s2 . d:s2 wn:hypernym d:s3 . d:s1 rdfs:label "s1" . d:s2 rdfs:label "s2" . d:s3 rdfs:label "s3" .
"""

# check name -> (planted Turtle, the triple(s) or focus the check must name)
PLANTED = {
    "literal_lexical_form": (
        'ex:paris ex:population "12a"^^xsd:integer . ex:bob ex:birthDate "2001-02-30"^^xsd:date .',
        ['<http://example.org/ex#paris> <http://example.org/ex#population> "12a"^^<http://www.w3.org/2001/XMLSchema#integer>',
         '<http://example.org/ex#bob> <http://example.org/ex#birthDate> "2001-02-30"^^<http://www.w3.org/2001/XMLSchema#date>']),
    "property_kind": (
        'ex:alice ex:knows "Bob" .',
        ['<http://example.org/ex#alice> <http://example.org/ex#knows> "Bob"']),
    "domain": (
        'ex:paris ex:birthDate "1900-01-01"^^xsd:date .',
        ['<http://example.org/ex#paris> <http://example.org/ex#birthDate> "1900-01-01"^^<http://www.w3.org/2001/XMLSchema#date>']),
    "range": (
        'ex:alice ex:birthPlace ex:bob . ex:paris ex:population "many" .',
        ['<http://example.org/ex#alice> <http://example.org/ex#birthPlace> <http://example.org/ex#bob>',
         '<http://example.org/ex#paris> <http://example.org/ex#population> "many"']),
    "disjoint_classes": (
        'ex:weird a ex:Student , ex:Place ; rdfs:label "weird" .',
        ['<http://example.org/ex#weird> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://example.org/ex#Student>',
         '<http://example.org/ex#weird> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://example.org/ex#Place>']),
    "functional_property": (
        'ex:alice ex:birthDate "1992-03-01"^^xsd:date .',
        ['<http://example.org/ex#alice> <http://example.org/ex#birthDate> "1992-02-29"^^<http://www.w3.org/2001/XMLSchema#date>',
         '<http://example.org/ex#alice> <http://example.org/ex#birthDate> "1992-03-01"^^<http://www.w3.org/2001/XMLSchema#date>']),
    "hierarchy_cycle": (
        'd:C rdfs:subClassOf d:A . d:s3 wn:instance_hypernym d:s1 .',
        ['<http://example.org/data/A> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <http://example.org/data/B>',
         '<http://example.org/data/B> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <http://example.org/data/C>',
         '<http://example.org/data/C> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <http://example.org/data/A>',
         '<http://example.org/data/s1> <https://globalwordnet.github.io/schemas/wn#hypernym> <http://example.org/data/s2>',
         '<http://example.org/data/s2> <https://globalwordnet.github.io/schemas/wn#hypernym> <http://example.org/data/s3>',
         '<http://example.org/data/s3> <https://globalwordnet.github.io/schemas/wn#instance_hypernym> <http://example.org/data/s1>']),
    "dangling_reference": (
        'ex:alice ex:knows ex:nobody .',
        ['<http://example.org/ex#alice> <http://example.org/ex#knows> <http://example.org/ex#nobody>']),
    "missing_label": (
        'ex:anon a ex:Person .',
        ['focus:<http://example.org/ex#anon>']),
    "undeclared_term": (
        'ex:alice ex:favouriteColour "blue" . ex:robby a ex:Robot ; rdfs:label "Robby" .',
        ['focus:<http://example.org/ex#favouriteColour>', 'focus:<http://example.org/ex#Robot>']),
}


def turtle_triples(text: str) -> list[tuple[str, str, str]]:
    return [(str(q.subject), str(q.predicate), str(q.object))
            for q in pyoxigraph.parse(text.encode(), format=pyoxigraph.RdfFormat.TURTLE)]


@pytest.fixture(scope="module")
def ontology(tmp_path_factory):
    p = tmp_path_factory.mktemp("onto") / "ex.ttl"
    p.write_text(ONTOLOGY)
    return load_ontologies([p])


def violations(ontology, text: str, check: str):
    ctx = TermIndex(ontology)
    ctx.add_all(turtle_triples(text))
    return ctx, run_checks(ctx, only=[check])[check]


def named(ctx, vs) -> set[str]:
    return {" ".join(ctx.triple(v.triple)) if v.triple is not None else f"focus:{v.focus}" for v in vs}


def test_every_check_has_a_planted_case():
    assert set(PLANTED) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_check_passes_clean_data(ontology, check):
    ctx, vs = violations(ontology, CLEAN, check)
    assert vs == [], [v.message for v in vs]


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_check_catches_planted_violation(ontology, check):
    planted, expected = PLANTED[check]
    ctx, vs = violations(ontology, CLEAN + planted, check)
    assert named(ctx, vs) == set(expected), [v.message for v in vs]
    assert all(v.check == check and v.severity == CHECKS[check].severity and v.message for v in vs)


def test_severity_override_and_off(ontology):
    ctx = TermIndex(ontology)
    ctx.add_all(turtle_triples(CLEAN + PLANTED["domain"][0]))
    res = run_checks(ctx, {"domain": "error", "missing_label": "off"})
    assert "missing_label" not in res
    assert [v.severity for v in res["domain"]] == ["error"]


def test_lexical_forms():
    X = "http://www.w3.org/2001/XMLSchema#"
    good = {"integer": ["0", "-12", "+7"], "nonNegativeInteger": ["0", "5"], "double": ["1.5e3", "-INF", "NaN", ".5"],
            "boolean": ["true", "0"], "date": ["2000-02-29", "-0044-03-15", "1999-12-31Z"], "gYear": ["1879", "-0500"],
            "dateTime": ["2020-01-01T10:00:00Z", "2020-01-01T24:00:00"], "gYearMonth": ["1999-05"],
            "decimal": ["3.14", "-0"], "byte": ["127"], "time": ["23:59:59.5"]}
    bad = {"integer": ["1.0", "ten", ""], "nonNegativeInteger": ["-1"], "double": ["1,5", "e3"],
           "boolean": ["yes", "True"], "date": ["1900-02-29", "2001-13-01", "2001-1-1", "01-01-2001"],
           "gYear": ["79", "1879-01"], "dateTime": ["2020-01-01 10:00:00", "2020-01-01T25:00:00"],
           "gYearMonth": ["1999-13"], "decimal": ["1e3"], "byte": ["128"], "time": ["24:01:00"]}
    for t, forms in good.items():
        for f in forms:
            assert lexical_error(f, X + t) is None, (f, t)
    for t, forms in bad.items():
        for f in forms:
            assert lexical_error(f, X + t), (f, t)
    assert lexical_error("anything", "http://dbpedia.org/datatype/euro") is None  # unknown datatypes: not judged


def test_datatype_fits():
    X = "http://www.w3.org/2001/XMLSchema#"
    assert datatype_fits(X + "int", X + "decimal")
    assert datatype_fits("http://www.w3.org/1999/02/22-rdf-syntax-ns#langString", X + "string")
    assert not datatype_fits(X + "gYear", X + "date")
    assert datatype_fits("http://dbpedia.org/datatype/euro", X + "double")
    assert not datatype_fits(X + "string", X + "integer")


def test_find_cycles_deep_chain_without_recursion():
    n = 50_000  # deeper than Python's recursion limit
    edges = {f"c{i:05d}": [f"c{i + 1:05d}"] for i in range(n - 1)} | {f"c{n - 1:05d}": ["c00000"]}
    cycles = find_cycles(edges)
    assert len(cycles) == 1 and len(cycles[0]) == n and cycles[0] == sorted(cycles[0])
    edges[f"c{n - 1:05d}"] = []
    assert find_cycles(edges) == []
    # Self-loops are cycles, excluded pairs are not: each cycle sorted, the list sorted.
    assert find_cycles({"b": ["b"], "a": ["c"], "c": ["a"]}) == [["a", "c"], ["b"]]
    assert find_cycles({"a": ["c"], "c": ["a"]}, exclude_pairs={("a", "c")}) == []
