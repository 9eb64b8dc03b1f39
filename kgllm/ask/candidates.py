"""Candidate queries built from the graph, not from the question's wording.

Takes: a question's linked entity mentions, class mentions and literal mentions (kgllm.ask.question), and the
index's adjacency (which predicates actually leave or reach each entity).
Makes: :class:`Query` candidates, each a basic graph pattern over the answer variable ``?x`` (and ``?m``, an
intermediate entity) with

* ``text``: an entity-free verbalization for the ranker, made from the labels of its predicates and class
  ("the birth place of it", "film whose starring is it", "the country of the manufacturer of it");
* ``sparql``: the query, built from escaped terms only (:func:`render_select`), which the answerer runs on the
  embedded store or the endpoint to get the answer set and the triples to cite.

Shapes (``Query.shape``):

=================== ======================================== ===========================================
shape               pattern                                  example
=================== ======================================== ===========================================
``lookup``          ``E p ?x``                               Who developed Skype?
``inverse``         ``?x p E`` (``?x a C`` optional)         Which films star Jesse Eisenberg?
``two_hop``         ``E p1 ?m . ?m p2 ?x`` (any directions)  Where is the maker of the Saab 9000 based?
``intersection``    ``?x p1 E1 . ?x p2 E2`` (or a literal)   Films directed by X starring Y; season 1 of S
``literal``         ``?x p "lit"``                           What does ICRO stand for?
``class``           ``?x a C``                               Give me all airlines. (with a superlative)
=================== ======================================== ===========================================

Aggregates (COUNT, ASK, ORDER BY ... LIMIT) are applied to the winning candidate by the answerer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..rdf import RDF_TYPE, is_auxiliary
from .sparql_templates import literal_from_nt, sparql_iri

VAR_X, VAR_M = "?x", "?m"


@dataclass
class Query:
    shape: str
    patterns: tuple[tuple[str, str, str], ...]   # terms in N-Triples syntax, or "?x" / "?m"
    text: str                                    # entity-free verbalization (the ranker's input)
    uses: tuple[str, ...]                        # linked terms the query uses (entities, classes, literals)
    path: tuple[tuple[str, str], ...]            # (predicate, "out"|"in") from the topic
    topic: str | None = None
    answers: set[str] = field(default_factory=set)   # from the adjacency (the SPARQL run gives the final set)
    prior: float = 0.0                                # linker evidence of the terms used
    score: float = 0.0                                # set by the ranker
    features: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.shape, self.patterns)


def _bgp_term(t: str) -> str:
    if t in (VAR_X, VAR_M) or t.startswith("?"):
        return t
    if t.startswith('"'):
        return literal_from_nt(t)
    return sparql_iri(t)


def render_where(patterns) -> str:
    """The WHERE block of a basic graph pattern, every term escaped (IRIs checked, literals quoted)."""
    return " . ".join(f"{_bgp_term(s)} {_bgp_term(p)} {_bgp_term(o)}" for s, p, o in patterns)


def variables(patterns) -> list[str]:
    out = []
    for tr in patterns:
        for t in tr:
            if t.startswith("?") and t not in out:
                out.append(t)
    return out


def render_select(patterns, limit: int | None = None, order: tuple[str, str] | None = None,
                  extra: tuple[tuple[str, str, str], ...] = (), exclude: str | None = None) -> str:
    """``SELECT DISTINCT`` all variables of the pattern (so every row names the triples behind it);
    ``exclude``: an IRI that ``?x`` must not be (a chain back to the entity the question names)."""
    pats = tuple(patterns) + tuple(extra)
    vs = " ".join(variables(pats)) or "*"
    where = render_where(pats) + (f" FILTER({VAR_X} != {sparql_iri(exclude)})" if exclude else "")
    q = f"SELECT DISTINCT {vs} WHERE {{ {where} }}"
    if order:
        var, direction = order
        q += f" ORDER BY {direction.upper()}({var})"
    elif vs != "*":
        q += " ORDER BY " + " ".join(variables(pats))
    if limit:
        q += f" LIMIT {int(limit)}"
    return q


def render_count(patterns) -> str:
    return f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {render_where(patterns)} }}"


def render_ask(patterns) -> str:
    return f"ASK {{ {render_where(patterns)} }}"


# ----------------------------------------------------------------------------- verbalization


def describe(shape: str, preds: list[tuple[str, str]], label, cls: str | None = None,
             literal: str | None = None) -> str:
    """The ranker's text of a candidate: entity-free, so that it is shared across entities (and cached).

    ``preds``: ``[(predicate term, direction)]`` from the topic; ``label``: term -> label."""
    c = label(cls) if cls else None
    if shape == "class":
        return f"all {c}" if c else "all things"
    if shape == "literal":
        (p, _d), = preds
        return f"{c or 'thing'} whose {label(p)} is {literal or 'it'}"
    if shape == "intersection":
        (p1, d1), (p2, d2) = preds
        return f"{c or 'thing'} {_rel(p1, d1, label)} and {_rel(p2, d2, label, other=True)}"
    if len(preds) == 1:
        p, d = preds[0]
        if d == "out":
            return f"the {label(p)} of it"
        return f"{c} whose {label(p)} is it" if c else f"those whose {label(p)} is it"
    (p1, d1), (p2, d2) = preds
    first = f"the {label(p1)} of it" if d1 == "out" else f"the thing whose {label(p1)} is it"
    if d2 == "out":
        return f"the {label(p2)} of {first}"
    return f"{c or 'thing'} whose {label(p2)} is {first}"


def _rel(p: str, d: str, label, other: bool = False) -> str:
    who = "that one" if other else "it"
    if d == "in":
        return f"whose {label(p)} is {who}"
    return f"that is the {label(p)} of {who}"


# ----------------------------------------------------------------------------- generation


@dataclass
class Mention:
    """A linked span of the question: an entity, a class or a literal (with the linker's score)."""
    term: str
    kind: str          # entity | class | literal | name (the literal label an entity was linked by)
    start: int
    end: int
    score: float
    surface: str = ""
    generalized: bool = False   # a class standing for a narrower one the question named (no instances)


class CandidateBuilder:
    """Candidate queries around the question's mentions, from the index's adjacency.

    ``edges(term)`` -> ``{(predicate, direction): [(far term, triple id)]}`` (kgllm.ask.retrieve.Retriever._edges);
    ``types(term)`` -> rdf:type terms of an entity; ``label(term)`` -> display label."""

    def __init__(self, edges, types, label, *, max_mids: int = 40, max_classes: int = 3,
                 max_candidates: int = 400, skip_predicates: frozenset[str] = frozenset()):
        self.edges, self.types, self.label = edges, types, label
        self.max_mids, self.max_classes, self.max_candidates = max_mids, max_classes, max_candidates
        self.skip = skip_predicates

    def bare_node(self, term: str) -> bool:
        """An untyped DBpedia intermediate node (the unnamed row of an infobox table): a way through, not an
        answer. A typed one (``dbr:Hokkaido__island__1``, an island) is an answer like any other."""
        return is_auxiliary(term) and not self.types(term)

    def one_hop(self, m: Mention, classes: list[Mention]) -> list[Query]:
        out = []
        for (p, d), far in sorted(self.edges(m.term).items()):
            if p in self.skip or p == RDF_TYPE and d == "out":
                continue
            answers = {t for t, _ in far if not self.bare_node(t)}
            if not answers:
                continue
            if d == "out":
                out.append(Query("lookup", ((m.term, p, VAR_X),), describe("lookup", [(p, d)], self.label),
                                 (m.term,), ((p, d),), m.term, answers, m.score))
                continue
            if p == RDF_TYPE:  # the mention is a class: "all C"
                continue
            out.append(Query("inverse", ((VAR_X, p, m.term),), describe("inverse", [(p, d)], self.label),
                             (m.term,), ((p, d),), m.term, answers, m.score))
            for c in classes:
                members = {a for a in answers if c.term in self.types(a)}
                if members:
                    out.append(Query("inverse", ((VAR_X, p, m.term), (VAR_X, RDF_TYPE, c.term)),
                                     describe("inverse", [(p, d)], self.label, cls=c.term),
                                     (m.term, c.term), ((p, d),), m.term, members, m.score + c.score))
        return out

    def two_hop(self, m: Mention, firsts: list[Query]) -> list[Query]:
        """Chains through the intermediate entities of the best first hops (``firsts``, already ranked)."""
        out = []
        for q1 in firsts:
            (p1, d1), = q1.path
            mids = sorted(t for t in q1.answers if t.startswith("<"))[: self.max_mids]
            by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
            for mid in mids:
                for (p2, d2), far in self.edges(mid).items():
                    if p2 in self.skip or p2 == RDF_TYPE:
                        continue
                    by_key[(p2, d2)].update(t for t, _ in far if t != m.term and not self.bare_node(t))
            for (p2, d2), answers in sorted(by_key.items()):
                if not answers:
                    continue
                a = (m.term, p1, VAR_M) if d1 == "out" else (VAR_M, p1, m.term)
                b = (VAR_M, p2, VAR_X) if d2 == "out" else (VAR_X, p2, VAR_M)
                out.append(Query("two_hop", (a, b), describe("two_hop", [(p1, d1), (p2, d2)], self.label),
                                 (m.term,), ((p1, d1), (p2, d2)), m.term, answers, m.score))
        return out

    def intersections(self, sets: list[tuple[Mention, Query]], classes: list[Mention]) -> list[Query]:
        """Pairs of candidates about different mentions whose answer sets overlap: "films directed by X
        starring Y", "episodes of S with season number 1"."""
        out = []
        for i, (m1, q1) in enumerate(sets):
            for m2, q2 in sets[i + 1:]:
                if m1.term == m2.term or m1.start == m2.start:
                    continue
                both = q1.answers & q2.answers
                if not both:
                    continue
                pats = tuple(sorted(set(q1.patterns) | set(q2.patterns)))
                text = describe("intersection", [q1.path[0], q2.path[0]], self.label,
                                cls=next((u for u in q1.uses + q2.uses if any(c.term == u for c in classes)),
                                         None))
                out.append(Query("intersection", pats, text, tuple(dict.fromkeys(q1.uses + q2.uses)),
                                 (q1.path[0], q2.path[0]), m1.term, both, m1.score + m2.score))
        return out
