"""OWL reasoning (real HermiT and Pellet via owlready2, in a subprocess): pizza, an inconsistent ontology,
timeouts, bad ontology files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgllm.errors import InputError
from kgllm.validate.ontology import load_ontologies
from kgllm.validate.reasoning import (
    parse_pellet_explain_blocks,
    parse_pellet_explanation,
    reason,
    summarize_java_failure,
)

ROOT = Path(__file__).resolve().parent.parent
PIZZA = ROOT / "ontologies" / "examples" / "pizza.owl"
PIZZA_NS = "http://www.co-ode.org/ontologies/pizza/pizza.owl#"

INCONSISTENT_TTL = """\
@prefix : <http://example.org/zoo#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<http://example.org/zoo> a owl:Ontology .
:Animal a owl:Class .
:Cat a owl:Class ; rdfs:subClassOf :Animal .
:Dog a owl:Class ; rdfs:subClassOf :Animal ; owl:disjointWith :Cat .
:tom a owl:NamedIndividual , :Cat , :Dog .
:rex a owl:NamedIndividual , :Dog .
"""


@pytest.fixture(scope="module")
def inconsistent_ttl(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("onto") / "zoo.ttl"
    p.write_text(INCONSISTENT_TTL)
    return p


@pytest.mark.slow
def test_pizza_is_consistent_with_exactly_its_known_unsatisfiable_classes():
    res = reason(load_ontologies([PIZZA]), "hermit", timeout_s=120, explain=False)
    assert res.status == "consistent" and res.consistent is True
    assert res.unsatisfiable_classes == [PIZZA_NS + "CheeseyVegetableTopping", PIZZA_NS + "IceCream"]
    assert not res.ok  # unsatisfiable classes are a problem


UNSAT_TTL = """\
@prefix : <http://example.org/u#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<http://example.org/u> a owl:Ontology .
:Cheese a owl:Class . :Vegetable a owl:Class ; owl:disjointWith :Cheese .
:CheesyVegetable a owl:Class ; rdfs:subClassOf :Cheese , :Vegetable .
:Carrot a owl:Class ; rdfs:subClassOf :Vegetable .
"""


@pytest.mark.slow
def test_unsatisfiable_classes_are_explained_by_pellet(tmp_path):
    (tmp_path / "u.ttl").write_text(UNSAT_TTL)
    res = reason(load_ontologies([tmp_path / "u.ttl"]), "hermit", timeout_s=120)
    assert res.status == "consistent"
    assert res.unsatisfiable_classes == ["http://example.org/u#CheesyVegetable"]
    assert res.explainer == "pellet"
    (block,) = res.unsatisfiable_explanations
    assert block["axiom"] == "CheesyVegetable subClassOf Nothing"
    assert set(block["explanations"][0]) == {"CheesyVegetable subClassOf Cheese", "CheesyVegetable subClassOf Vegetable",
                                             "Vegetable disjointWith Cheese"} or \
        set(block["explanations"][0]) == {"CheesyVegetable subClassOf Cheese", "CheesyVegetable subClassOf Vegetable",
                                          "Cheese disjointWith Vegetable"}, block


@pytest.mark.slow
def test_inconsistent_ontology_is_explained_by_pellet(inconsistent_ttl):
    # Turtle input: converted to N-Triples for owlready2.
    res = reason(load_ontologies([inconsistent_ttl]), "hermit", timeout_s=120)
    assert res.status == "inconsistent" and res.consistent is False
    assert res.explainer == "pellet"
    assert res.explanations, res.message
    axioms = set(res.explanations[0])
    # The justification: tom's two types and the disjointness, nothing about rex.
    assert {"tom type Cat", "tom type Dog", "Dog disjointWith Cat"} <= axioms or \
           {"tom type Cat", "tom type Dog", "Cat disjointWith Dog"} <= axioms, axioms
    assert not any("rex" in a for a in axioms)


@pytest.mark.slow
def test_pellet_as_the_reasoner(inconsistent_ttl):
    res = reason(load_ontologies([inconsistent_ttl]), "pellet", timeout_s=120)
    assert (res.reasoner, res.status, res.explainer) == ("pellet", "inconsistent", "pellet")
    assert any("tom type Cat" in e for e in res.explanations)


def test_reasoner_timeout_is_a_status_not_a_hang():
    res = reason(load_ontologies([PIZZA]), "hermit", timeout_s=0.3)
    assert res.status == "timeout" and res.consistent is None
    assert "0.3" in res.message and "reasoning_timeout_s" in res.message


def test_reasoner_out_of_memory_is_reported(tmp_path):
    # 8 MB of Java heap is not enough for HermiT on the DBpedia ontology: a status, not an exception.
    res = reason(load_ontologies([ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"]), "hermit", java_heap_mb=8,
                 timeout_s=60)
    assert res.status == "out_of_memory", res
    first = res.message.splitlines()[0]
    assert "OutOfMemoryError" in first and "8 MB Java heap" in first and "java_heap_mb" in first


def test_java_failure_message_leads_with_the_cause_however_long_the_trace():
    # A Java stack trace longer than any tail kept: the cause line must still be in the message, first.
    trace = "\n".join(f"\tat org.example.Deep.frame{i}(Deep.java:{i})" for i in range(5000))
    text = f'Java error message is:\nException in thread "main" java.lang.OutOfMemoryError: Java heap space\n{trace}\n'
    status, msg = summarize_java_failure(text, 64, "hermit failed")
    assert status == "out_of_memory"
    assert msg.startswith('hermit failed: Exception in thread "main" java.lang.OutOfMemoryError: Java heap space')
    assert "64 MB Java heap" in msg and "frame4999" in msg and len(msg) < 2200
    status, msg = summarize_java_failure(
        "Traceback (most recent call last):\n  File \"x.py\", line 1\n    raise ValueError('bad')\n"
        "ValueError: bad ontology\n", 2000, "reasoner worker failed (exit 1)")
    assert status == "error"
    assert msg.splitlines()[0] == "reasoner worker failed (exit 1): ValueError: bad ontology"
    assert summarize_java_failure("", 2000, "pellet explain failed") == ("error", "pellet explain failed: no output")


def test_unparseable_ontology_names_the_file(tmp_path):
    bad = tmp_path / "broken.ttl"
    bad.write_text("@prefix : <http://x/> .\n:a :b \n")
    with pytest.raises(InputError, match="broken.ttl"):
        load_ontologies([bad])
    (tmp_path / "x.docx").write_text("hello")
    with pytest.raises(InputError, match="unknown RDF syntax"):
        load_ontologies([tmp_path / "x.docx"])
    with pytest.raises(InputError, match="does not exist"):
        load_ontologies([tmp_path / "missing.owl"])


def test_unresolvable_import_is_listed_and_ignored(tmp_path):
    p = tmp_path / "imp.ttl"
    p.write_text("@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
                 "<http://example.org/a> a owl:Ontology ; owl:imports <http://example.org/not-here> .\n"
                 "<http://example.org/a#C> a owl:Class .\n")
    ont = load_ontologies([p])
    assert ont.unresolved_imports == [{"file": str(p), "import": "http://example.org/not-here"}]


def test_parse_pellet_explanation():
    text = "Axiom: Thing subClassOf Nothing\n\nExplanation(s): \n1)   a type B\n     B disjointWith C\n" \
           "2)   x type Y\n     DisjointClasses(A\n                     B)\n\nAxiom: Q subClassOf Nothing\n\n" \
           "Explanation(s): \n1)   Q subClassOf B\n"
    assert parse_pellet_explanation(text) == [["a type B", "B disjointWith C"], ["x type Y", "DisjointClasses(A B)"]]
    assert [b["axiom"] for b in parse_pellet_explain_blocks(text)] == ["Thing subClassOf Nothing",
                                                                        "Q subClassOf Nothing"]


def test_xz_rdfxml_ontology_is_indexed():
    ont = load_ontologies([ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"])
    dbo = "http://dbpedia.org/ontology/"
    assert f"<{dbo}Animal>" in ont.superclasses[f"<{dbo}Person>"]  # this snapshot: Person < Animal
    assert f"<{dbo}Agent>" in ont.superclasses[f"<{dbo}Company>"]
    assert ont.domains[f"<{dbo}birthPlace>"] == {f"<{dbo}Animal>"}
    assert f"<{dbo}birthPlace>" in ont.object_properties
    assert ont.namespaces == [dbo]
    assert ont.disjoint
