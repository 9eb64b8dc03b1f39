"""An in-memory view of graph artifacts for text generation: facts by subject, names, types.

Takes: graph artifacts (N-Triples term strings, via :func:`kgllm.rdf.iter_graph`) and optional ontology
files (any RDF format :func:`kgllm.rdf.detect_format` knows by extension: RDF/XML, Turtle, N-Triples...,
optionally .gz/.bz2/.xz) for labels of predicates and classes.
Makes: a :class:`KG` with each triple classified by the role it plays in the corpus (see ``ROLE_*``);
the roles add up to the number of triples read, so the manifest can account for every triple.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from ..errors import InputError
from ..log import progress
from ..rdf import (
    DBO,
    DC,
    DCT_SUBJECT,
    FOAF,
    ONTOLEX,
    ONTOLEX_CANONICAL_FORM,
    ONTOLEX_IS_LEXICALIZED_SENSE_OF,
    ONTOLEX_SENSE,
    ONTOLEX_WRITTEN_REP,
    OWL,
    OWL_SAMEAS,
    PROV,
    RDF_TYPE,
    RDFS_COMMENT,
    RDFS_LABEL,
    RDFS_SUBCLASSOF,
    SCHEMA,
    SKOS_PREFLABEL,
    WN,
    WN_DEFINITION,
    WN_PART_OF_SPEECH,
    Triple,
    detect_format,
    iri,
    iter_graph,
    open_rdf,
    oxigraph_format,
    parse_literal,
)

# WordNet and ontolex terms the corpus reads by name.
WN_EXAMPLE = iri(WN + "example")
DC_IDENTIFIER = iri(DC + "identifier")
# Predicates giving an entity's name (used as its surface form, not verbalized as facts).
NAME_PREDICATES = (RDFS_LABEL, SKOS_PREFLABEL, iri(FOAF + "name"))
ABSTRACT_PREDICATES = (iri(DBO + "abstract"), RDFS_COMMENT)
# WordNet synset attributes that make up the definition header of a synset document.
WN_GLOSS = {WN_DEFINITION, WN_EXAMPLE, WN_PART_OF_SPEECH, DC_IDENTIFIER, iri(WN + "lexfile")}
# Lexical scaffolding: entries, forms and senses (they give synonyms and word labels).
LEXICAL = {ONTOLEX_CANONICAL_FORM, ONTOLEX_WRITTEN_REP, ONTOLEX_SENSE, ONTOLEX_IS_LEXICALIZED_SENSE_OF}
# Bookkeeping predicates with no content worth a sentence.
SKIP_PREDICATES = {
    OWL_SAMEAS, *(iri(DBO + n) for n in (
        "wikiPageID", "wikiPageRevisionID", "wikiPageLength", "wikiPageOutDegree", "wikiPageWikiLink", "thumbnail",
        "wikiPageRedirects", "wikiPageDisambiguates", "wikiPageExternalLink", "wikiPageWikiLinkText",
        "wikiPageInterLanguageLink")),
    iri(FOAF + "depiction"), iri(FOAF + "isPrimaryTopicOf"), iri(FOAF + "primaryTopic"), iri(PROV + "wasDerivedFrom"),
    DCT_SUBJECT, iri(OWL + "equivalentClass"), iri(OWL + "equivalentProperty"), RDFS_SUBCLASSOF,
}
SYNSET_TYPE = iri(WN + "Synset")
LEXICAL_CONCEPT = iri(ONTOLEX + "LexicalConcept")
PERSON_TYPES = {iri(DBO + "Person"), iri(FOAF + "Person"), iri(SCHEMA + "Person")}
_DBO_PREFIX = "<" + DBO  # IRI terms of DBpedia ontology classes start so
POS_NAMES = {"noun": "noun", "verb": "verb", "adjective": "adjective", "adverb": "adverb",
             "adjective_satellite": "adjective"}

ROLE_FACT = "fact"            # a templated sentence
ROLE_NAME = "name"            # the entity's name
ROLE_TYPE = "type"            # rdf:type (the most specific one becomes "X is a Y.")
ROLE_ABSTRACT = "abstract"    # free text about the entity
ROLE_GLOSS = "wordnet_gloss"  # WordNet definition, examples, part of speech
ROLE_LEXICAL = "lexical"      # ontolex entries/senses
ROLE_SKIP = "skipped_predicate"
ROLE_BNODE = "blank_node"
ROLE_OTHER_LANG = "other_language"


def _intern(s: str) -> str:
    return sys.intern(s)


class KG:
    """Facts grouped by subject, plus names and types. Terms are N-Triples strings."""

    def __init__(self, language: str = "en"):
        self.language = language
        self.out: dict[str, list[tuple[str, str]]] = defaultdict(list)   # s -> [(p, o)] (all roles)
        self.types: dict[str, list[str]] = defaultdict(list)
        self.names: dict[str, tuple[int, str]] = {}                      # term -> (rank, name)
        self.type_count: Counter = Counter()
        self.roles: Counter = Counter()
        self.triples = 0
        self.onto_labels: dict[str, str] = {}      # IRI term -> English label (ontology or graph)
        self.superclasses: dict[str, set[str]] = defaultdict(set)
        self.sense_of: dict[str, str] = {}         # sense -> synset
        self.entry_of_sense: dict[str, str] = {}   # sense -> lexical entry
        self.senses_of_synset: dict[str, list[str]] = defaultdict(list)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_graphs(cls, graph_dirs: Iterable[Path], ontology: Iterable[Path] = (), language: str = "en") -> KG:
        kg = cls(language)
        for f in ontology:
            kg.load_ontology(Path(f))
        kg.add_all(progress(iter_graph(list(graph_dirs)), desc="reading graph", unit="triple"))
        return kg

    @classmethod
    def from_triples(cls, triples: Iterable[Triple], language: str = "en") -> KG:
        kg = cls(language)
        kg.add_all(triples)
        return kg

    def add_all(self, triples: Iterable[Triple]) -> None:
        for s, p, o in triples:
            self.add(s, p, o)
        for s in self.sense_of:
            self.senses_of_synset[self.sense_of[s]].append(s)
        for v in self.senses_of_synset.values():
            v.sort()

    def add(self, s: str, p: str, o: str) -> None:
        self.triples += 1
        s, p = _intern(s), _intern(p)
        if o.startswith("<"):
            o = _intern(o)
        self.out[s].append((p, o))
        if p == RDF_TYPE:
            self.types[s].append(o)
            self.type_count[o] += 1
        elif p in NAME_PREDICATES and o.startswith('"'):
            value, lang, _ = parse_literal(o)
            # rank: preferred language beats untagged beats others; rdfs:label beats skos/foaf.
            rank = (0 if lang == self.language else 1 if lang is None else 2) * 10 + NAME_PREDICATES.index(p)
            old = self.names.get(s)
            if old is None or rank < old[0] or (rank == old[0] and value < old[1]):
                self.names[s] = (rank, " ".join(value.split()))
        elif p == ONTOLEX_IS_LEXICALIZED_SENSE_OF:
            self.sense_of[s] = o
        elif p == ONTOLEX_SENSE:
            self.entry_of_sense[o] = s

    def load_ontology(self, path: Path) -> None:
        """Labels (English) and subclass links of an ontology file."""
        import pyoxigraph

        if not path.exists():
            raise InputError(f"{path}: ontology file does not exist")
        fmt, comp = detect_format(path, what="ontology file")
        try:
            with open_rdf(path, comp) as fh:
                for q in pyoxigraph.parse(fh, format=oxigraph_format(fmt)):
                    s, p, o = str(q.subject), str(q.predicate), q.object
                    if p == RDFS_LABEL and isinstance(o, pyoxigraph.Literal):
                        if o.language in (self.language, None) and (o.language or s not in self.onto_labels):
                            self.onto_labels[s] = o.value
                    elif p == RDFS_SUBCLASSOF and isinstance(o, pyoxigraph.NamedNode):
                        self.superclasses[s].add(str(o))
        except (SyntaxError, ValueError, OSError) as e:
            raise InputError(f"{path}: cannot parse the ontology ({e}); give an RDF/XML, Turtle or N-Triples file") \
                from e

    # ------------------------------------------------------------------ queries

    def role(self, s: str, p: str, o: str) -> str:
        """The role a triple plays in the corpus (see ``ROLE_*``)."""
        if s.startswith("_:") or o.startswith("_:"):
            return ROLE_BNODE
        if p == RDF_TYPE:
            return ROLE_TYPE
        if p in NAME_PREDICATES:
            return ROLE_NAME
        if p in ABSTRACT_PREDICATES:
            if o.startswith('"'):
                lang = parse_literal(o)[1]
                if lang not in (None, self.language):
                    return ROLE_OTHER_LANG
            return ROLE_ABSTRACT
        if p in WN_GLOSS and self.is_synset(s):
            return ROLE_GLOSS
        if p in LEXICAL:
            return ROLE_LEXICAL
        if p in SKIP_PREDICATES:
            return ROLE_SKIP
        return ROLE_FACT

    def is_synset(self, s: str) -> bool:
        t = self.types.get(s, ())
        return SYNSET_TYPE in t or LEXICAL_CONCEPT in t

    def is_person(self, s: str) -> bool:
        return any(t in PERSON_TYPES for t in self.types.get(s, ()))

    def objects(self, s: str, p: str) -> list[str]:
        return [o for q, o in self.out.get(s, ()) if q == p]

    def has(self, s: str, p: str, o: str) -> bool:
        return any(q == p and x == o for q, x in self.out.get(s, ()))

    def name(self, term: str) -> str:
        """Surface name of an IRI: its label, a sense's word, or its local name made readable."""
        n = self.names.get(term)
        if n is not None:
            return _strip_disambiguation(n[1])
        if term in self.entry_of_sense:
            e = self.names.get(self.entry_of_sense[term])
            if e is not None:
                return e[1]
        if term in self.onto_labels:
            return self.onto_labels[term]
        return local_name(term)

    def label_of(self, term: str) -> str | None:
        """Ontology/graph label of a predicate or class, if any."""
        if term in self.onto_labels:
            return self.onto_labels[term]
        n = self.names.get(term)
        return n[1] if n else None

    def main_type(self, s: str) -> str | None:
        """The most specific typed class of ``s`` that has a label, preferring DBpedia ontology classes.

        Specific = not a superclass of another of its types (ontology) and, as a tie-break, the class
        with the fewest instances in the graph (works without an ontology)."""
        types = [t for t in self.types.get(s, ()) if self.label_of(t) or t.startswith(_DBO_PREFIX)]
        if not types:
            return None
        dbo = [t for t in types if t.startswith(_DBO_PREFIX)]
        cands = dbo or types
        supers = set()
        for t in cands:
            supers |= self._ancestors(t)
        specific = [t for t in cands if t not in supers] or cands
        return min(specific, key=lambda t: (self.type_count[t], t))

    def _ancestors(self, t: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.superclasses.get(t, ()))
        while stack:
            c = stack.pop()
            if c not in seen:
                seen.add(c)
                stack.extend(self.superclasses.get(c, ()))
        return seen

    def synset_of(self, s: str) -> str | None:
        """The synset a sense belongs to (sense relations are told in the synset's document)."""
        return self.sense_of.get(s)


def local_name(term: str) -> str:
    """``<http://dbpedia.org/resource/Waterside_(building)>`` -> ``Waterside``."""
    v = term[1:-1] if term.startswith("<") else term
    name = v.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    if not name or "?" in v or re.search(r"\.[a-z]{2,5}$", name):
        return v  # a web page (homepage, document), not an entity: keep the URL
    name = _strip_disambiguation(unquote(name).replace("_", " "))
    return " ".join(name.split()) or v


def _strip_disambiguation(name: str) -> str:
    """Wikipedia titles: "Peristasis (architecture)" -> "Peristasis"."""
    if name.endswith(")") and " (" in name and not name.startswith("("):
        return name[: name.rindex(" (")].strip() or name
    return name
