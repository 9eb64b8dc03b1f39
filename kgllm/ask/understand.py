"""Question understanding: from linked mentions to the candidate query that answers, and its aggregate.

Takes: a question, the index (linker, adjacency, labels, encoder), the retriever's edge cache, a
:class:`~kgllm.ask.ranker.Ranker` and optionally a SPARQL runner (embedded store or endpoint).
Makes: a :class:`Understood` result: the winning :class:`~kgllm.ask.candidates.Query`, its answer set and the
triple ids behind each answer (from running its SPARQL when a runner is given, else from the adjacency), the
aggregate asked for (``count``, ``ask``, ``max``/``min`` for superlatives) and a confidence; or ``None``
when no candidate is confident enough, so that the answer is "not in the graph".

1. **Mentions.** Entities from the linker (top candidates per span); classes: linked terms that have
   instances (``?x rdf:type C``), also through a word's WordNet synonyms ("movies" -> film), and so for the
   noun right after "which"/"what" even where it also links an article ("Which car ..." asks for cars, not
   about the article Car); country and
   other adjectives through WordNet pertainyms ("Danish" -> Denmark); literals: quoted text, acronyms,
   years, numbers and ordinals ("first" -> 1), matched against the graph's literal objects by SPARQL.
2. **Candidates** (kgllm.ask.candidates): every one-hop lookup in either direction around each entity (with
   the class constraints of the question's class mentions), two-hop chains through the best first hops,
   intersections of candidates about different mentions, literal lookups, and class lists.
3. **Ranking**: the ranker's cosine between the masked question and the candidate's text, plus the curated
   relation matcher's lexical score, the linker's evidence, the support of the question's top vector hits
   for the candidate's first predicate (vector hits rescue lexical gaps), and the agreement of the answer
   type with the wh-word. Scores below ``min_confidence`` are not answers.
4. **Aggregates** on the winner: COUNT ("how many", unless the graph stores the number), ASK (yes/no:
   whether the other mention is among the answers; "no" is an answer only when the relation exists for the
   topic), ORDER BY ... LIMIT 1 (superlatives: the members' numeric or date property the ranker matches).
"""

from __future__ import annotations

import bisect
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache

from ..index.lexicon import ALT_PREDICATES, local_name, normalize_label
from ..rdf import (
    CLASS_TYPES,
    DCT_SUBJECT,
    GENERIC_CLASSES,
    PROPERTY_TYPES,
    PROV,
    RDF_TYPE,
    RDFS_DOMAIN,
    RDFS_RANGE,
    RDFS_SUBCLASSOF,
    WN_PART_OF_SPEECH,
    XSD,
    XSD_STRING,
    iri,
    is_literal,
    literal,
    parse_literal,
    triple_id,
)
from .candidates import VAR_X, CandidateBuilder, Mention, Query, describe, render_ask, render_select
from .question import STOP, Question, content_tokens, word_forms, wordnet
from .ranker import mask_question
from .relations import SlotContext
from .sparql_templates import literal_from_nt


@cache
def _stem(word: str) -> str:
    """Porter's stem (nltk): "convicted" and "convictions" -> "convict" (cached: a vocabulary's words)."""
    return _porter().stem(word)


@lru_cache(maxsize=1)
def _porter():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


# Yes/no questions start with an auxiliary verb.
_AUX = frozenset("is are was were does do did has have had can could will would should".split())
_POSSESSIVE = re.compile(r"(?:'s|s')\s+(?:\w+\s+){0,2}[A-Z\d]")   # "Danielle Steel's novel Sisters"
_SUPERLATIVE_ASC = frozenset("smallest lowest shortest least fewest earliest oldest cheapest".split())
_SUPERLATIVE_DESC = frozenset("largest biggest highest tallest longest most greatest latest youngest newest "
                              "deepest heaviest widest richest busiest".split())
_DATE_ASC = frozenset("oldest earliest first".split())
_AGE_WORDS = frozenset("oldest earliest first youngest newest latest last".split()) | {"most recently"}
_ORDINALS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split(), 1)}
_DATE_DT = {XSD + n for n in ("date", "dateTime", "gYear", "gYearMonth")}
_NAME = re.compile(r"\b[A-Z][\w'.&-]*(?:\s+[A-Z][\w'.&-]*)*")
_NOT_NAME = frozenset("who whom whose what which where when why how is are was were does do did has have had can "
                      "could give list show name tell in on of the a an and to for from by with".split())
_CALLED = re.compile(r"\b(?:called|named|nicknamed|titled|known as)\s+(?:the\s+)?([^?!\"“”]{2,80}?)\s*[?!.]?\s*$", re.I)
_QUOTED = re.compile(r"[\"“']([^\"”']{1,80})[\"”']")
_CODE = re.compile(r"\b(?=[\w-]*\d)\w+(?:-\w+)+\b")   # ISBNs and other hyphenated codes
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9&.-]{1,9}\b")
# The words before a class mention that make it what the question asks for ("Which other airlines ...",
# "Give me all the car models ..."), not a word elsewhere in it ("How many people work at ...").
_AUXILIARY = r"is|are|was|were|does|do|did|has|have"   # not a focus word: "Which is ...", "What did ..."
_FOCUS = re.compile(r"\s*(?:(?:which|what|how many|how much)|(?:give|show|tell) me|list|name|count(?: the number of)?)"
                    rf"(?:\s+(?:all|the|of|every|me))*(?:\s+(?!(?:{_AUXILIARY})\b)[\w-]+){{0,2}}"
                    r"\s*")
_FOCUS_NOUN = re.compile(rf"\s*(?i:which|what|how\s+many|count(?:\s+the)?(?:\s+number\s+of)?)\s+"
                         rf"(?!(?:{_AUXILIARY}|of|the|an?)\b)([a-z][a-z-]+)\b")
_NUMBER = re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+(?:\.\d+)?\b")  # 2,500 / 15251531 / 3.5
_NAME_PROPERTY = re.compile(r"(.*[a-z])Name(\d*)>")


@lru_cache(maxsize=4096)
def _title_property(p: str) -> str | None:
    """The title property beside a name property (``<...leaderName>`` -> ``<...leaderTitle>``, ``leaderName1``
    -> ``leaderTitle1``), or None."""
    m = _NAME_PROPERTY.fullmatch(p)
    return f"{m.group(1)}Title{m.group(2)}>" if m else None


@lru_cache(maxsize=8192)
def _names_a_role(word: str) -> bool:
    """``word``'s commonest noun sense is a kind of person (WordNet's ``noun.person``: mayor, bishop, king)."""
    wn = wordnet()
    if wn is None:
        return False
    for form in sorted(word_forms(word)):
        syns = wn.synsets(form, pos="n")
        if syns:
            return syns[0].lexname() == "noun.person"
    return False


def _holds_title(path) -> bool:
    """A chain from a title to the name beside it (``?place leaderTitle <Mayor_of_Rome> ; leaderName ?x``): the
    holder of the office the question names (either of DBpedia's spellings of each, ``dbo:`` and ``dbp:``)."""
    if len(path) != 2 or path[0][1] != "in" or path[1][1] != "out":
        return False
    title = _title_property(path[1][0])
    return title is not None and local_name(title) == local_name(path[0][0])


@dataclass
class UnderstandConfig:
    min_confidence: float = 0.55   # ranker cosine + bonuses a candidate needs to answer
    lexical_weight: float = 0.35   # weight of the curated relation matcher's score
    prior_weight: float = 0.15     # weight of the linker's evidence for the terms used
    vector_weight: float = 0.15    # support of the question's top vector hits for the first predicate
    inverse_penalty: float = 0.05  # an inverse lookup without a class constraint
    inverse_factor: float = 0.85   # lexical evidence for an inverse hop counts this much
    min_vector: float = 0.5        # a vector hit supports a candidate from this cosine on
    hop_penalty: float = 0.12      # a two-hop chain must beat the one-hop candidates by this much
    bare_hop_penalty: float = 0.2  # per hop of a chain that no word of the question names
    bare_value_penalty: float = 0.5  # a chain with such a hop whose answers are values (literals)
    unnamed_relation_penalty: float = 0.1  # the question names a schema property; the candidate another one
    mention_bonus: float = 0.12    # per extra question mention a candidate uses (intersections, classes)
    min_name_similarity: float = 0.5  # cosine an unlinked name needs to an entity's description
    name_penalty: float = 0.1      # the thing an entity's own name names: usually the entity itself
    declared_bonus: float = 0.05   # a property the graph's ontology declares
    markup_penalty: float = 0.5    # times the share of a candidate's answers that are unparsed markup
    coverage_weight: float = 0.1   # superlatives: share of members with one value of the ordering property
    yes_slack: float = 0.2         # yes/no: how far below min_confidence a direct link may score
    yes_margin: float = 0.3        # yes/no: candidates this close to the best may confirm the claim
    class_fit_bonus: float = 0.15  # a class the question names is the relation's range or the answers' type
    who_misfit_penalty: float = 0.2  # "who": the answers are known to be something else (a place, a style)
    first_hops: int = 6            # best one-hop candidates expanded into two-hop chains
    pair_pool: int = 12            # best single candidates per mention considered for intersections
    max_answers: int = 200         # answers returned (the full count is reported)
    run_top: int = 5               # best candidates run until one has answers
    superlative_bases: int = 4     # superlatives: best list candidates tried as the members to order
    superlative_slack: float = 0.3  # superlatives: how far below min_confidence a list candidate may score
    category_words_max: int = 3    # categories whose every word the question uses, taken as mentions
    category_words_bonus: float = 0.3  # the members of such a category (the set its name describes)
    title_match: float = 1.0       # lexical score of a name property whose title the question names ("mayor")
    title_mismatch_penalty: float = 0.3  # ... and the cost when the question names a role that is no such title


@dataclass
class Understood:
    query: Query
    answers: list[str]
    support: dict[str, list[str]]
    total: int
    sparql: str | None
    aggregate: str | None = None        # count | ask | max | min
    boolean: bool | None = None
    count: int | None = None
    ranked: list[Query] = field(default_factory=list)


class Understander:
    def __init__(self, index, edges, ranker, matcher, sparql=None, config: UnderstandConfig | None = None):
        self.index, self.edges, self.ranker, self.matcher, self.sparql = index, edges, ranker, matcher, sparql
        self.config = config or UnderstandConfig()
        self.sparql_ms = 0.0   # time spent in SPARQL for the current question
        # (property, start) the current question names (set by drop_properties)
        self.asked_properties: set[tuple[str, int]] = set()
        self._types: dict[str, frozenset[str]] = {}
        self._is_class: dict[str, bool] = {}
        self._category_index: dict[str, list[tuple[str, frozenset[str]]]] | None = None
        # Categories the current question names by their words, with the span of those words.
        self.word_categories: dict[str, tuple[int, int]] = {}
        # Names, identifiers and bookkeeping are not answers to questions (the predicates the index does not
        # embed, plus part of speech and provenance links).
        skip = {iri(p) for p in (getattr(index, "settings", None) or {}).get("skip_predicates", [])}
        skip = (skip - ALT_PREDICATES) | {WN_PART_OF_SPEECH, iri(PROV + "wasDerivedFrom")}  # nicknames are answers
        self.builder = CandidateBuilder(edges, self.types, self.label, skip_predicates=frozenset(skip))

    # ------------------------------------------------------------------ mentions

    def label(self, term: str) -> str:
        """A term's label for candidate texts (``dct:subject`` links DBpedia resources to their categories)."""
        return "category" if term == DCT_SUBJECT else self.index.label(term)

    def types(self, term: str) -> frozenset[str]:
        got = self._types.get(term)
        if got is None:
            got = self._types[term] = frozenset(t for t, _ in self.edges(term).get((RDF_TYPE, "out"), ()))
        return got

    def is_class(self, term: str) -> bool:
        got = self._is_class.get(term)
        if got is None:
            g = self.index.graph
            node, pid = g.term_id(term), g.term_id(RDF_TYPE)
            got = bool(self.types(term) & CLASS_TYPES) or node is not None and pid is not None and \
                next(g.edges(node, "in", predicates={pid}), None) is not None
            self._is_class[term] = got
        return got

    def drop_properties(self, linked):
        """Linked mentions without the candidates that are properties (an ontology labels its properties:
        "developed" is a word of the question's relation, not an entity it names)."""
        out = []
        self.asked_properties = set()
        for lm in linked:
            keep = [c for c in lm.candidates if not (self.types(c.iri) & PROPERTY_TYPES)]
            # A property the question names by its exact label ("the population of ...", "top speed").
            self.asked_properties |= {(c.iri, lm.start) for c in lm.candidates if c.match == "exact"
                                      and c.source in ("label", "alt") and self.types(c.iri) & PROPERTY_TYPES}
            if keep:
                lm.candidates = keep
                out.append(lm)
        return out

    def mentions(self, text: str, linked) -> tuple[list[Mention], list[Mention], list[Mention]]:
        entities, classes, names = [], [], []
        linked_classes: set[str] = set()
        for lm in linked:
            for c in lm.candidates[:3]:
                kind = "class" if self.is_class(c.iri) else "entity"
                if kind == "entity" and c.source in ("label", "alt") and c.tid and self.sparql is not None:
                    # The name itself, as the literal the graph holds: "Which airline goes by the full name
                    # Koninklijke Luchtvaart Maatschappij?" asks for the thing that has this name.
                    for rec in self.index.triples([c.tid]):
                        if rec.o.startswith('"') and rec.s == c.iri:
                            names.append(Mention(rec.o, "name", lm.start, lm.end, c.score, lm.surface))
                if kind == "class":
                    linked_classes.add(c.iri)
                start = lm.start
                if "/Category:" in c.iri and lm.surface.lower().startswith("category "):
                    start += len("category ")  # "category" is the relation's word, the rest names it
                (classes if kind == "class" else entities).append(
                    Mention(c.iri, kind, start, lm.end, c.score, lm.surface))
        by_synonym = self._names_by_wordnet(text)
        if by_synonym:   # the whole name wins over what the linker made of its words ("Second": a datatype)
            inside = lambda m: any(w.start <= m.start and m.end <= w.end for w in by_synonym)  # noqa: E731
            entities = [m for m in entities if not inside(m)] + by_synonym
            classes = [m for m in classes if not inside(m)]
        covered = [(m.start, m.end) for m in entities + classes]
        entities += self._names_by_vector(text, covered)
        covered = [(m.start, m.end) for m in entities + classes]
        for tok in content_tokens(text, covered):
            n_classes = len(classes)
            for term, kind in self._wordnet_terms(tok.text):
                m = Mention(term, kind, tok.start, tok.end, 0.8, tok.text)
                if kind == "class" and self.is_class(term):
                    classes.append(m)
                elif kind == "entity" and self.index.graph.term_id(term) is not None:
                    entities.append(m)
            if len(classes) == n_classes:   # a collective noun: the class of its members ("the people": person)
                classes += [Mention(t, "class", tok.start, tok.end, 0.8, tok.text)
                            for t in self._classes_named(_wordnet_members(tok.text))]
        focus = _FOCUS_NOUN.match(text)
        if focus and not any(m.start == focus.start(1) for m in classes):
            # "Which car went into production first?": a common noun after the wh-word asks for members of a
            # class, even where the lexicon also names a thing by it (the article Car).
            word = focus.group(1)
            found = [t for t, kind in self._wordnet_terms(word) if kind == "class" and self.is_class(t)]
            for term in found or self._kind_classes(word):
                linked_classes.add(term)
                classes.append(Mention(term, "class", focus.start(1), focus.end(1), 0.8, word))
        # Only a class the question names outright stands for its superclass (WordNet synonyms are too loose).
        classes = [m for m in (self._populated(c) if c.term in linked_classes else c for c in classes)
                   if m.term not in GENERIC_CLASSES]
        # Categories named by their words in other order and forms (no effect on what else is linked).
        entities += self._categories_by_words(text, entities)
        named = self._named_value(text)
        literals = self._literals(text, entities + classes, named)
        if named is not None:
            # "nicknamed the Gamecocks": the words are the value asked about, not the thing they link to.
            a, b, _ = named
            entities = [m for m in entities if not (a <= m.start and m.end <= b)]
            classes = [m for m in classes if not (a <= m.start and m.end <= b)]
            names = [m for m in names if not (a <= m.start and m.end <= b)]
        return entities, classes, literals + names

    def _categories_by_words(self, text: str, entities: list[Mention]) -> list[Mention]:
        """Categories whose every content word (at least two) a list question uses, in any order and form: a
        category names a set by a noun phrase, which a question about the set rewords ("Which airlines are
        owned by a government?": Government-owned airlines). Not when the question names a thing beyond the
        category's words ("Which of Danielle Steel's books are romance novels?" is no question about Novels
        by Danielle Steel), nor a category only named after one linked thing (Category:Cathay Pacific), nor
        for a yes/no question. The most specific (most words) first; each a mention over the words it
        matched, recorded in :attr:`word_categories`."""
        self.word_categories = {}
        index = self._category_words()
        if not index or _is_yes_no(text):
            return []
        tokens = content_tokens(text)
        stems: dict[str, list] = defaultdict(list)
        for t in tokens:
            for s in {_stem(f) for f in t.forms | {t.text}}:
                stems[s].append(t)
        found: dict[str, frozenset[str]] = {}
        for s in stems:
            for term, need in index.get(s, ()):
                if term not in found and need <= stems.keys():
                    found[term] = need
        out = []
        for term, need in sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            used = {t.start for s in need for t in stems[s]}
            a = min(used)
            b = max(t.end for t in tokens if t.start in used)
            inside = [m for m in entities if m.start <= a and b <= m.end]
            beyond = [m for m in entities if any(m.start <= t.start < m.end and t.start not in used for t in tokens)]
            if inside or beyond:
                continue
            out.append(Mention(term, "entity", a, b, 0.8, text[a:b]))
            self.word_categories[term] = (a, b)
            if len(out) >= self.config.category_words_max:
                break
        return out

    def _category_words(self) -> dict[str, list[tuple[str, frozenset[str]]]]:
        """stem -> the categories (DBpedia's ``Category:`` resources) with that stem among their content words'
        stems, each with all of them; built once, from the graph's sorted terms."""
        if self._category_index is None:
            terms = self.index.graph.terms
            prefix = "<http://dbpedia.org/resource/Category:"
            out: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
            for i in range(bisect.bisect_left(terms, prefix), len(terms)):
                term = terms[i]
                if not term.startswith(prefix):
                    break
                words = re.findall(r"[^\W_]+", term[len(prefix):-1].lower())
                need = frozenset(_stem(w) if not w.isdigit() else w for w in words if w not in STOP)
                if len(need) >= 2:
                    for s in need:
                        out[s].append((term, need))
            self._category_index = dict(out)
        return self._category_index

    def _populated(self, c: Mention, levels: int = 2) -> Mention:
        """A class without instances in the graph stands for its nearest superclass that has some
        ("airline" when the data types airlines only as companies), with a lower score per level."""
        term, score = c.term, c.score
        for _ in range(levels):
            if self.edges(term).get((RDF_TYPE, "in")):
                break
            supers = sorted(t for t, _ in self.edges(term).get((RDFS_SUBCLASSOF, "out"), ()) if t.startswith("<"))
            if not supers:
                break
            term, score = supers[0], score * 0.9
        else:
            if not self.edges(term).get((RDF_TYPE, "in")):
                return c
        if term == c.term:
            return c
        return Mention(term, "class", c.start, c.end, round(score, 6), c.surface, generalized=True)

    def _names_by_wordnet(self, text: str) -> list[Mention]:
        """Names of two or more words that the lexicon does not know as written but WordNet gives with a
        synonym it knows ("Second World War": World War II)."""
        out = []
        for a, b, words in _name_spans(text):
            name = text[a:b]
            if len(words) < 2 or self.index.lexicon.lookup(normalize_label(name)):
                continue
            for other in _wordnet_synonyms(name):
                for t, _src, _tid in self.index.lexicon.lookup(normalize_label(other)):
                    if not self.is_class(t) and self.index.graph.term_id(t) is not None:
                        out.append(Mention(t, "entity", a, b, 0.8, name))
        return out

    def _names_by_vector(self, text: str, covered: list[tuple[int, int]]) -> list[Mention]:
        """Capitalized names the lexicon does not know as written ("Chirac", "GMT"): the nearest entity
        descriptions whose label contains the name's words (the index's entity vectors), else the shortest
        names in the lexicon that hold its words ("Amsterdam Schiphol")."""
        vectors = "entity" in self.index.vectors
        out = []
        for a, b, words in _name_spans(text):
            if any(a < e and s < b for s, e in covered):
                continue
            name = text[a:b]
            want = {w.lower().strip("'s") for w in words}
            found = []
            for h in self.index.search(name, 5, kind="entity") if vectors else ():
                label = set(re.findall(r"[\w']+", self.index.label(h.key).lower()))
                if h.score >= self.config.min_name_similarity and want <= label:
                    found.append(Mention(h.key, "entity", a, b, round(0.7 * h.score, 6), name))
            if not found and len(words) > 1:
                # A name with a word left out ("Amsterdam Schiphol" for Amsterdam Airport Schiphol): the
                # lexicon's shortest names holding its words in order.
                keys = self.index.lexicon.containing([normalize_label(w) for w in words], extra=1, limit=3)
                for k in keys:
                    for t, _src, _tid in self.index.lexicon.lookup(k):
                        if not self.is_class(t) and self.index.graph.term_id(t) is not None:
                            found.append(Mention(t, "entity", a, b, 0.6, name))
            out += found
        return out

    def _kind_classes(self, word: str) -> list[str]:
        """Classes for a noun that names none itself, through WordNet: the class of a collective noun's members
        ("Which people ...": person), else the class above most of the classes named by its kinds ("Which
        vehicles ...": cars, aircraft, ships and more -> means of transportation)."""
        found = self._classes_named(_wordnet_members(word))
        if found:
            return found
        found = self._classes_named(_wordnet_kinds(word))
        if len(found) < 2:
            return found
        # Some kinds' words name unrelated classes too ("cat", a tractor, names the animal): the class above
        # most of them (more than half), the nearest where several are.
        cover = Counter(c for k in found for c in self._superclasses(k) if c not in GENERIC_CLASSES)
        best = max(cover, key=lambda c: (cover[c], len(self._superclasses(c)), c), default=None)
        return [best] if best is not None and 2 * cover[best] > len(found) else []

    def _classes_named(self, names) -> list[str]:
        return list(dict.fromkeys(t for name in names for t, _src, _tid in self.index.lexicon.lookup(name)
                                  if self.is_class(t)))

    def _superclasses(self, term: str, levels: int = 8) -> list[str]:
        """``term`` and its superclasses in the graph's ontology, nearest first."""
        out, level = [term], [term]
        for _ in range(levels):
            level = [t for c in level for t, _ in self.edges(c).get((RDFS_SUBCLASSOF, "out"), ())
                     if t.startswith("<") and t not in out]
            if not level:
                break
            out += dict.fromkeys(level)
        return out

    def _wordnet_terms(self, word: str) -> list[tuple[str, str]]:
        """Class terms for a noun's synonyms, entity terms for an adjective's pertainyms (WordNet)."""
        out = []
        for kind, names in _wordnet_names(word):
            for name in names:
                for t, _src, _tid in self.index.lexicon.lookup(name):
                    out.append((t, kind))
        return list(dict.fromkeys(out))   # a term several synonyms name (or by several sources) once

    def _named_value(self, text: str) -> tuple[int, int, list[str]] | None:
        """The name after "called", "nicknamed", "known as", as the literal(s) the graph holds: a value as
        written, like a quoted one ("officially called Dr. Ing. h.c. F. Porsche AG": the linker sees
        "Porsche")."""
        m = _CALLED.search(text) if self.sparql is not None else None
        if m is None:
            return None
        held = [t for t in (literal(m.group(1), lang="en"), literal(m.group(1))) if self._holds_literal(t)]
        return (m.start(1), m.end(1), held) if held else None

    def _literals(self, text: str, taken: list[Mention], named=None) -> list[Mention]:
        if self.sparql is None:
            return []
        spans = [(m.start, m.end) for m in taken]
        found: list[tuple[int, int, list[str]]] = []
        for m in _QUOTED.finditer(text):
            found.append((m.start(1), m.end(1), [literal(m.group(1)), literal(m.group(1), lang="en")]))
        if named is not None and not found:
            found.append(named)
        quoted = len(found)
        for m in _CODE.finditer(text):
            found.append((m.start(), m.end(), [literal(m.group(0)), literal(m.group(0), lang="en")]))
        for a, b in _names(text):
            # A capitalized name the linker did not know may be a literal: a nickname, a callsign, an
            # official name ("the Gamecocks", "CARGO KING").
            found.append((a, b, [literal(text[a:b], lang="en"), literal(text[a:b])]))
        for m in _ACRONYM.finditer(text):
            if m.group(0) in ("I", "A") or len(m.group(0)) < 2:
                continue
            v = m.group(0)
            found.append((m.start(), m.end(), [literal(v), literal(v, lang="en")]))
        for m in _NUMBER.finditer(text):
            v = m.group(0).replace(",", "")
            terms = [literal(v, datatype=XSD + "integer"), literal(v), literal(v, datatype=XSD + "gYear")]
            if "." in v:
                terms = [literal(v, datatype=XSD + "double"), literal(v, datatype=XSD + "decimal"), literal(v)]
            found.append((m.start(), m.end(), terms))
        for m in re.finditer(r"\b(" + "|".join(_ORDINALS) + r")\b", text, re.I):
            n = str(_ORDINALS[m.group(1).lower()])
            found.append((m.start(), m.end(), [literal(n, datatype=XSD + "integer")]))
        out = []
        # (Quotes say outright that they hold a value, whatever the linker made of the words inside.)
        for i, (a, b, terms) in enumerate(found):
            if i >= quoted and any(a < e and s < b for s, e in spans):
                continue
            spans.append((a, b))  # earlier patterns (quotes, codes) win over the numbers inside them
            for t in terms:
                out.append(Mention(t, "literal", a, b, 1.0, text[a:b]))
        return out

    # ------------------------------------------------------------------ candidates

    def candidates(self, q: Question, text: str, entities, classes, literals, vector_hits) -> list[Query]:
        cfg = self.config
        # Vector hits: which (entity, predicate) pairs the question's nearest triples are about.
        vsupport: Counter = Counter()
        for h in vector_hits[:10]:
            if h.score >= cfg.min_vector:
                for rec in self.index.triples([h.key]):
                    vsupport[(rec.s, rec.p)] += 1
                    vsupport[(rec.o, rec.p)] += 1
        singles: dict[int, list[Query]] = defaultdict(list)  # by mention start
        for m in entities:
            singles[m.start] += self.builder.one_hop(m, classes)
        lit_cands = self._literal_candidates(literals, classes)
        for m, qs in lit_cands:
            singles[m.start] += qs
        allq = [c for qs in singles.values() for c in qs]
        self._score(q, allq, vsupport, entities, classes, literals)
        # Two-hop chains through the best first hops of each entity.
        two = []
        for m in entities:
            firsts = sorted((c for c in singles[m.start] if c.topic == m.term and len(c.patterns) == 1
                             and c.shape in ("lookup", "inverse")), key=lambda c: -c.score)[: cfg.first_hops]
            two += self.builder.two_hop(m, firsts)
        self._score(q, two, vsupport, entities, classes, literals)
        # Intersections of the best singles of different mentions.
        pool = []
        for start, qs in singles.items():
            ms = [m for m in entities + literals if m.start == start]
            best = sorted(qs, key=lambda c: -c.score)[: cfg.pair_pool]
            for c in best:
                mm = next((m for m in ms if m.term == c.topic), None)
                if mm is not None and c.shape in ("inverse", "literal") and len(c.patterns) == 1:
                    pool.append((mm, c))
        inter = self.builder.intersections(pool, classes)
        self._score(q, inter, vsupport, entities, classes, literals)
        # Class lists ("Give me all airlines", the base of superlatives) when no entity is named.
        cls = []
        class_spans = {(m.start, m.end) for m in classes}
        if not [m for m in entities if (m.start, m.end) not in class_spans]:  # "airline": a class, not dbr:Airline
            for c in classes:
                members = {t for t, _ in self.edges(c.term).get((RDF_TYPE, "in"), ())}
                if members:
                    cls.append(Query("class", ((VAR_X, RDF_TYPE, c.term),),
                                     describe("class", [], self.label, cls=c.term), (c.term,), (),
                                     None, members, c.score))
            self._score(q, cls, vsupport, entities, classes, literals)
        out = allq + two + inter + cls
        out.sort(key=lambda c: (-c.score, c.text, c.patterns))
        return out

    def _class_fit(self, c: Query, class_terms: set[str], exact: set[str]) -> float:
        """1 when a class the question names is the range (lookups) or domain (inverse) of the candidate's
        last predicate, or the type of its answers; 0 otherwise."""
        if not class_terms or not c.path or c.shape in ("class",):
            return 0.0
        p, d = c.path[-1]
        if any(u in class_terms for u in c.uses):
            return 1.0
        # A superclass standing in for the class the question named says nothing about a relation's range,
        # but answers of that superclass are what the question asks for ("airlines" typed as companies).
        want = RDFS_RANGE if d == "out" else RDFS_DOMAIN
        if {t for t, _ in self.edges(p).get((want, "out"), ())} & class_terms & exact:
            return 1.0
        sample = sorted(c.answers)[:10]
        if sample and any(self.types(a) & class_terms for a in sample):
            return 1.0
        return 0.0

    def answer_kind(self, c: Query) -> float | None:
        """The share of the evidence that says the candidate's answers are agents (people, organisations):
        WordNet's first noun senses of the head nouns of the answers' types; without those, of the range
        (domain, for an inverse hop) of its last predicate; without that, of the predicate's label. None
        without evidence. A question's "who" asks for an agent: the designer, not the body style."""
        iris = sorted(a for a in c.answers if a.startswith("<"))[:10]
        if len(iris) < len(c.answers) / 2:
            return None  # mostly literals: _wh_agreement's business
        p, d = c.path[-1]
        kinds = [_noun_kind(_head_noun(self.label(t))) for a in iris for t in self.types(a)]
        if not any(k is not None for k in kinds):
            want = RDFS_RANGE if d == "out" else RDFS_DOMAIN
            kinds = [_noun_kind(_head_noun(self.label(t))) for t, _ in self.edges(p).get((want, "out"), ())]
        if not any(k is not None for k in kinds) and d == "out":
            kinds = [_noun_kind(_head_noun(self.label(p)))]
        kinds = [k for k in kinds if k is not None]
        return sum(kinds) / len(kinds) if kinds else None

    def _holds_literal(self, term: str) -> bool:
        t0 = time.perf_counter()
        rows = self.sparql.select(f"SELECT ?x WHERE {{ ?x ?p {literal_from_nt(term)} }} LIMIT 1")
        self.sparql_ms += (time.perf_counter() - t0) * 1000
        return bool(rows)

    def _literal_candidates(self, literals: list[Mention], classes: list[Mention]):
        out = []
        for m in literals:
            t0 = time.perf_counter()
            rows = self.sparql.select(f"SELECT DISTINCT ?x ?p WHERE {{ ?x ?p {literal_from_nt(m.term)} }} LIMIT 2000")
            self.sparql_ms += (time.perf_counter() - t0) * 1000
            by_p: dict[str, set[str]] = defaultdict(set)
            for r in rows:
                if "x" in r and "p" in r:
                    by_p[r["p"]].add(r["x"])
            qs = []
            for p, xs in sorted(by_p.items()):
                qs.append(Query("literal", ((VAR_X, p, m.term),),
                                describe("literal", [(p, "in")], self.label), (m.term,), ((p, "in"),),
                                m.term, xs, m.score))
                for c in classes:
                    members = {x for x in xs if c.term in self.types(x)}
                    if members:
                        qs.append(Query("literal", ((VAR_X, p, m.term), (VAR_X, RDF_TYPE, c.term)),
                                        describe("literal", [(p, "in")], self.label, cls=c.term),
                                        (m.term, c.term), ((p, "in"),), m.term, members, m.score + c.score))
            out.append((m, qs))
        return out

    def _score(self, q: Question, cands: list[Query], vsupport: Counter, entities, classes, literals) -> None:
        if not cands:
            return
        cfg = self.config
        # Each candidate sees the question minus the mentions it uses: in a large lexicon the relation words
        # themselves ("mean", "kind", "hub") are linkable entities too, and must stay relation words for a
        # candidate about another mention.
        spans_of: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for m in entities + literals:
            spans_of[m.term].append((m.start, m.end))
        keys = [tuple(sorted({sp for u in c.uses for sp in spans_of.get(u, ())})) for c in cands]
        cos = [0.0] * len(cands)
        toks_of: dict[tuple, list] = {}
        for key in dict.fromkeys(keys):
            idx = [i for i, k in enumerate(keys) if k == key]
            got = self.ranker.scores(mask_question(q.text, list(key)), [cands[i].text for i in idx])
            for i, v in zip(idx, got, strict=True):
                cos[i] = float(v)
            # Relation words: everything but these mentions (class words such as "airports" also name the
            # relation's range: "target airport").
            toks_of[key] = content_tokens(q.text, list(key))
        mentioned = {m.term for m in entities}
        yes_no = _is_yes_no(q.text)
        class_terms = {m.term for m in classes}
        exact_classes = {m.term for m in classes if not m.generalized}
        name_terms = {m.term for m in literals if m.kind == "name"}
        focus = [m for m in classes if _FOCUS.fullmatch(q.text[: m.start].lower())]
        # ("What country ...": a word in the focus names the class asked for, not a property.)
        asked = {p for p, start in self.asked_properties if not _FOCUS.fullmatch(q.text[:start].lower())}
        for c, s, key in zip(cands, cos, keys, strict=True):
            toks = toks_of[key]
            lex, used, bare, mismatch = 0.0, frozenset(), 0, False
            office = _holds_title(c.path)
            for k, (p, d) in enumerate(c.path):
                slots = SlotContext.of(q.text, toks, spans_of.get(c.topic, ()), d) if k == 0 else None
                m = self.matcher.lexical(p, toks, q.wh if (p, d) == c.path[-1] else None, exclude=used,
                                         slots=slots)
                hit, hit_used = m.score, m.used
                if hit <= 0 and k == 0 and d == "out" and c.topic:
                    hit, hit_used = self._title_match(c.topic, p, toks, used)
                    if hit < 0:   # the question names a role, and not one of the titles: another office
                        hit, mismatch = 0.0, True
                elif hit <= 0 and office:
                    hit = cfg.title_match   # the topic is an office: who holds it ("the mayor of Rome")
                lex += hit * (1.0 if d == "out" else cfg.inverse_factor)
                used = used | hit_used
                bare += hit <= 0
            first = c.path[0][0] if c.path else None
            vec = min(vsupport.get((c.topic, first), 0), 3) / 3 if first else 0.0
            n_mentions = len({u for u in c.uses if u not in class_terms}) + len({u for u in c.uses
                                                                                 if u in class_terms})
            by_name = c.topic in name_terms  # "the thing called X": only the ranker's words can ask for it
            if by_name:
                n_mentions = 1
            span = self.word_categories.get(c.topic)
            class_named = False
            if span is not None:
                # A category the question names by its words uses the mentions among them: "motor vehicle
                # manufacturers ... Finland" is one set, not a set about Finland; its class word is its members'
                # class, whatever types the data gives them (an intersection with the class only drops members).
                within = {m.term for m in entities + classes if span[0] <= m.start and m.end <= span[1]} - {c.topic}
                n_mentions = max(n_mentions, 1 + len(within))
                class_named = any(m.term in within for m in classes)
            score = float(s) + cfg.lexical_weight * min(lex, 1.5 * len(c.path or [1])) + cfg.prior_weight * min(c.prior, 2.0) / 2 \
                + cfg.vector_weight * vec + cfg.mention_bonus * (n_mentions - 1)
            if asked and lex <= 0 and not asked & {p for p, _d in c.path}:
                # The question names a property of the graph's schema; a candidate about another relation
                # that no question word names answers some other question.
                score -= cfg.unnamed_relation_penalty
            if mismatch:
                score -= cfg.title_mismatch_penalty
            if c.shape == "two_hop":
                # A chain is a claim about two relations: each hop needs words of its own in the question.
                score -= cfg.hop_penalty + cfg.bare_hop_penalty * bare
                if bare and c.answers and all(map(is_literal, c.answers)):
                    # A value reached through a hop no word names belongs to that other thing: the population
                    # of the region Le Havre is part of is not Le Havre's.
                    score -= cfg.bare_value_penalty
            elif c.shape == "inverse" and len(c.patterns) == 1:
                score -= cfg.inverse_penalty  # facts that point *to* the entity rank below facts about it
            if c.answers and c.answers <= mentioned and c.shape != "literal" and not yes_no:
                score -= 0.5  # a question rarely asks for the entity it names (a yes/no question checks one)
            score += _wh_agreement(q.wh, c.answers)
            if q.wh in ("who", "whom") and c.path:
                agent = self.answer_kind(c)
                if agent is not None and agent < 0.25:
                    score -= cfg.who_misfit_penalty
            fit = 0.0 if by_name else 1.0 if class_named else self._class_fit(c, class_terms, exact_classes)
            if focus and c.answers and not any(a.startswith("<") for a in c.answers) \
                    and not (q.shape == "count" and all(_is_number(a) for a in c.answers)):
                fit = -1.0  # "Show me the airlines ...": things of a class, not strings (their names)
            score += cfg.class_fit_bonus * fit - (cfg.name_penalty if by_name else 0.0)
            if c.path and all(self.types(p) & PROPERTY_TYPES for p, _d in c.path):
                # Properties the ontology declares over raw ones (DBpedia's dbo:hubAirport over the
                # infobox's dbp:hubs, which often holds a partial or unparsed copy).
                score += cfg.declared_bonus
            if c.answers:
                # Unparsed infobox values ("*", "*Tokyo\n**Haneda ...") are no answers: a candidate whose
                # answers are mostly markup is a raw copy of a relation that a clean property holds.
                score -= cfg.markup_penalty * sum(map(is_markup, c.answers)) / len(c.answers)
            if c.topic in self.word_categories and c.path == ((DCT_SUBJECT, "in"),):
                score += cfg.category_words_bonus   # the set the category's name describes
            c.features = {"cos": round(float(s), 4), "lex": round(lex, 4), "vec": round(vec, 3),
                          "mentions": n_mentions}
            c.score = round(score, 6)

    def _title_match(self, topic: str, p: str, toks, used) -> tuple[float, frozenset[int]]:
        """A name property qualified by a title property beside it (DBpedia's ``leaderName`` with
        ``leaderTitle``: Rome's leader title is "Mayor", its leader name Ignazio Marino): when a question word
        not yet used names one of ``topic``'s titles ("Who governs Rome as mayor?"), the question asks for the
        name property as if it named it (:attr:`UnderstandConfig.title_match`); when a word names a role
        that is none of them ("Who is the bishop of Rome?": a person noun, by its commonest WordNet sense),
        ``(-1, {})``: the question asks about another office. ``(0, {})`` otherwise."""
        title = _title_property(p)
        if title is None:
            return 0.0, frozenset()
        values = self.edges(topic).get((title, "out"), ())
        if not values:
            return 0.0, frozenset()
        forms = set()
        for t, _ in values:
            for w in content_tokens(self.label(t)):
                forms |= w.forms
        hits = frozenset(j for j, t in enumerate(toks) if j not in used and t.forms & forms)
        if hits:
            return self.config.title_match, hits
        if any(_names_a_role(t.text) for j, t in enumerate(toks) if j not in used):
            return -1.0, frozenset()
        return 0.0, frozenset()

    # ------------------------------------------------------------------ entry point

    def understand(self, text: str, q: Question, linked, vector_hits) -> Understood | None:
        cfg = self.config
        self.sparql_ms = 0.0
        entities, classes, literals = self.mentions(text, linked)
        words = [w.lower() for w in re.findall(r"[\w']+", text)]
        sup = superlative_word(text, words)
        if sup in ("first", "last"):  # "went into production first": an order, not the number 1
            literals = [m for m in literals if m.surface.lower() != sup]
        cands = self.candidates(q, text, entities, classes, literals, vector_hits)
        if not cands:
            return None
        if _is_yes_no(text):
            return self._yes_no(text, cands, entities, literals)
        if sup is not None:
            got = self._superlative(text, q, cands, sup)
            if got is not None:
                return got
        for c in cands[: cfg.run_top]:
            if c.score < cfg.min_confidence:
                break
            res = self.run(c)
            if res is not None:
                res.ranked = cands
                if q.shape == "count" and not (len(res.answers) == 1 and _is_number(res.answers[0])):
                    if all(map(is_literal, res.answers)):
                        # "How many passengers ...": things are counted, names and strings are not (the
                        # count of a frequent flyer programme's names answers nothing asked).
                        continue
                    res.aggregate, res.count = "count", res.total
                return res
        return None

    def _yes_no(self, text: str, cands: list[Query], entities, literals) -> Understood | None:
        """Is the other mention among the answers of a candidate about one mention? "Yes" when any candidate
        scoring within ``yes_margin`` of the best holds it; "no" when the best one, run, does not."""
        literals = [m for m in literals if m.kind == "literal"]  # an entity's own name is no claim about it
        # A possessive names the topic, it is no claim about it: in "Was Danielle Steel's novel Sisters put
        # out by Dell?" the claim is Dell, and Sisters' author being Danielle Steel confirms nothing.
        # So does a common noun right before a name ("the novel Sisters", "the airline KLM").
        starts = {m.start for m in entities}
        owners = {m.term for m in entities if _POSSESSIVE.match(text, m.end) or (
            m.surface[:1].islower() and any(text[m.end:s2].isspace() for s2 in starts if s2 > m.end))}
        others = {m.term for m in entities + literals} - owners
        cands = [c for c in cands if c.topic not in owners]
        cfg = self.config
        top = cands[0].score if cands else 0.0
        near = [c for c in cands[: cfg.run_top * 4] if c.score >= max(cfg.min_confidence, top - cfg.yes_margin)]
        # A direct link between the two things the question names is itself evidence: the best such
        # candidate confirms the claim with a lower bar than a relation found by its words alone.
        yes = [c for c in cands if c.shape in ("lookup", "inverse") and len(c.patterns) == 1
               and (others - {c.topic}) & c.answers and c.score >= cfg.min_confidence - cfg.yes_slack][:1]
        for c in yes + near:
            if c.score < self.config.min_confidence and c not in yes:
                break
            if c.shape not in ("lookup", "inverse") or len(c.patterns) != 1:
                continue
            claim = [t for t in others if t != c.topic and any(
                m.term == t and not any(m2.term == c.topic and m2.start == m.start for m2 in entities)
                for m in entities + literals)]
            if not claim:
                continue
            res = self.run(c)
            if res is None:
                continue
            hit = [t for t in claim if t in res.support or any(_same_value(t, a) for a in res.answers)]
            res.aggregate, res.boolean, res.ranked = "ask", bool(hit), cands
            if hit:
                a = next(a for a in res.answers if a in hit or any(_same_value(t, a) for t in hit))
                res.support = {a: res.support.get(a, [])}
            res.sparql = render_ask(_bind(c.patterns, hit[0] if hit else claim[0]))
            return res
        return None

    def _superlative(self, text: str, q: Question, cands: list[Query], word: str) -> Understood | None:
        """ORDER BY the members' numeric or date property that the question's words match, LIMIT 1.

        The members are those of a list candidate; a class the question names needs no relation words. Of the
        best few list candidates, the one whose members have the best-fitting property to order by wins, on
        the sum of both scores ("Among Saab's models, which began production earliest?": the things Saab
        manufactured, which have production start years, over Saab's industry)."""
        cfg = self.config
        bases = [c for c in cands if len(c.answers) > 1 and (
            c.shape == "class" or c.score >= cfg.min_confidence - cfg.superlative_slack and c.shape in (
                "inverse", "intersection", "literal"))][: cfg.superlative_bases]
        best_fit, choice = None, None
        for base in bases:
            got = self._order_property(text, q, base, word)
            if got is None:
                continue
            # A base below the answering threshold needs the ordering property's words to carry it.
            if base.score < cfg.min_confidence and got[0] < cfg.min_confidence and base.shape != "class":
                continue
            total = got[0] + base.score
            if best_fit is None or total > best_fit:
                best_fit, choice = total, (base, got[1], got[2])
        if choice is None:
            return None
        base, p, props = choice
        dates = any((parse_literal(t)[2] or "") in _DATE_DT for _m, t in props[p])
        asc = word in _DATE_ASC if dates else word in _SUPERLATIVE_ASC
        if word == "most recently" or word == "last":
            asc = False
        vals = [(m, t, _num(t, years=dates)) for m, t in props[p] if _num(t) is not None]
        if not vals:
            return None
        top = (min if asc else max)(vals, key=lambda x: x[2])
        winners = sorted({m for m, _t, v in vals if v == top[2]})
        ext = ((VAR_X, p, "?v"),)
        sparql = render_select(base.patterns, limit=1, order=("?v", "asc" if asc else "desc"), extra=ext)
        support = {}
        for w in winners:
            tids = [triple_id(w, p, t) for m, t, v in vals if m == w and v == top[2]]
            res = self.run(base, restrict={w})
            support[w] = (res.support.get(w, []) if res else []) + tids
        qq = Query("superlative", base.patterns + ext, f"{base.text} with the {word} {self.index.label(p)}",
                   base.uses, base.path + ((p, "out"),), base.topic, set(winners), base.prior, base.score)
        if self.sparql is not None:
            self.sparql.last_query = sparql
        return Understood(qq, winners, support, len(winners), sparql, "max" if not asc else "min", ranked=cands)

    def _order_property(self, text: str, q: Question, base: Query, word: str
                        ) -> tuple[float, str, dict[str, list[tuple[str, str]]]] | None:
        """The members' property to order by for ``word`` ("earliest"), with its fit; None when none has
        orderable values."""
        members = sorted(base.answers)[:500]
        props: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for mbr in members:
            for (p, d), far in self.edges(mbr).items():
                if d != "out":
                    continue
                for t, _tid in far:
                    if _orderable(t):
                        props[p].append((mbr, t))
        if not props:
            return None
        if word in _AGE_WORDS:
            # Age and order words ask for dates ("the oldest airline": founded earliest) when members have any.
            dated = {p: v for p, v in props.items() if any((parse_literal(t)[2] or "") in _DATE_DT for _m, t in v)}
            props = dated or props
        preds = sorted(props)
        masked = mask_question(text, [])
        cos = self.ranker.scores(masked, [f"the {word} {self.index.label(p)}" for p in preds])
        # The superlative itself is no relation word ("smallest" is not the "small" of a property's name).
        toks = [t for t in q.relation_tokens if not word.startswith(t.text.lower()[:4])]
        lex = [self.matcher.lexical(p, toks, None).score for p in preds]

        def fit(i: int) -> float:
            # A property to order members by is one most of them have, once each (a founding date, not
            # the dates of a history table), and preferably one the ontology declares.
            vals = props[preds[i]]
            per = Counter(m for m, _t in vals)
            have, multi = len(per) / len(members), sum(1 for n in per.values() if n > 1) / len(per)
            declared = bool(self.types(preds[i]) & PROPERTY_TYPES)
            return cos[i] + self.config.lexical_weight * lex[i] + self.config.coverage_weight * (have - multi) \
                + self.config.declared_bonus * declared

        best = max(range(len(preds)), key=lambda i: (fit(i), len(props[preds[i]])))
        return fit(best), preds[best], props

    # ------------------------------------------------------------------ running a candidate

    def run(self, c: Query, restrict: set[str] | None = None) -> Understood | None:
        """Run the candidate: SPARQL on the store or endpoint when there is one, else the adjacency."""
        # A chain that comes back to the entity it starts from ("airlines that share a hub with KLM") does
        # not answer with that entity.
        back = c.topic if c.shape == "two_hop" and c.topic.startswith("<") else None
        sparql = render_select(c.patterns, limit=self.config.max_answers * 20, exclude=back) \
            if self.sparql is not None else None
        rows = self._rows_sparql(c, sparql) if sparql is not None else self._rows_adjacency(c)
        support: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            x = row.get(VAR_X)
            if x is None or (restrict is not None and x not in restrict) or self.builder.bare_node(x) \
                    or x == back or no_value(x):
                continue
            for s, p, o in c.patterns:
                s2, o2 = row.get(s, s), row.get(o, o)
                tid = triple_id(s2, p, o2)
                if tid not in support[x]:
                    support[x].append(tid)
        # Literal answers in other languages give way to English ones (labels, abstracts, mottos).
        support = dict(prefer_english(list(support.items())))
        if not support:
            return None
        answers = sorted(support)
        total = len(answers)
        answers = answers[: self.config.max_answers]
        return Understood(c, answers, {a: support[a] for a in answers}, total, sparql)

    def _rows_sparql(self, c: Query, q: str) -> list[dict[str, str]]:
        t0 = time.perf_counter()
        rows = self.sparql.select(q)
        self.sparql_ms += (time.perf_counter() - t0) * 1000
        self.sparql.last_query = q
        out = []
        for r in rows:
            row = {"?" + k: v for k, v in r.items()}
            # Engines return typed literals in canonical form; cite the graph's own spelling.
            for s, p, o in c.patterns:
                if o.startswith("?") and o in row and row[o].startswith('"') and not s.startswith("?"):
                    row[o] = self._graph_literal(s, p, row[o])
                elif o.startswith("?") and o in row and row[o].startswith('"') and s in row:
                    row[o] = self._graph_literal(row[s], p, row[o])
            out.append(row)
        return out

    def _graph_literal(self, subject: str, predicate: str, term: str) -> str:
        far = [t for t, _ in self.edges(subject).get((predicate, "out"), ())]
        if term in far:
            return term
        key = literal_value(term)
        return next((t for t in far if t.startswith('"') and literal_value(t) == key), term)

    def _rows_adjacency(self, c: Query) -> list[dict[str, str]]:
        """Evaluate the pattern over the index's adjacency, one pattern at a time, each with a bound end."""
        rows: list[dict[str, str]] = [{}]
        pending = list(c.patterns)
        while pending:
            bound = set(rows[0])
            i = next((i for i, (s, _p, o) in enumerate(pending)
                      if not _var(s) or not _var(o) or s in bound or o in bound), None)
            if i is None:
                return []
            s, p, o = pending.pop(i)
            nxt = []
            for r in rows:
                s2, o2 = r.get(s, s), r.get(o, o)
                if not _var(s2):
                    for t, _tid in self.edges(s2).get((p, "out"), ()):
                        if _var(o2):
                            nxt.append({**r, o2: t})
                        elif t == o2:
                            nxt.append(r)
                else:
                    for t, _tid in self.edges(o2).get((p, "in"), ()):
                        nxt.append({**r, s2: t})
            rows = nxt[:100_000]
            if not rows:
                return []
        return rows


_NUMERIC = {XSD + n for n in (
    "integer", "decimal", "double", "float", "int", "long", "short", "byte", "nonNegativeInteger",
    "nonPositiveInteger", "negativeInteger", "positiveInteger", "unsignedLong", "unsignedInt",
    "unsignedShort", "unsignedByte")}
_ORDERABLE_DT = _NUMERIC | _DATE_DT   # values a superlative can order (numbers, dates)


def _names(text: str) -> list[tuple[int, int]]:
    """Spans of capitalized names, without a leading question or function word and trailing punctuation."""
    out = []
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        while words and words[0].lower() in _NOT_NAME:
            words = words[1:]
        if not words:
            continue
        a = text.find(words[0], m.start())
        b = m.end() - (len(m.group(0)) - len(m.group(0).rstrip(".,;:")))
        if b > a:
            out.append((a, b))
    return out


def literal_value(term: str) -> tuple:
    """A comparison key for an N-Triples literal: numbers of any XSD numeric type by value, other literals
    by lexical form and datatype or language."""
    lex, lang, dt = parse_literal(term)
    if lang:
        return ("lang", lex, lang.lower())
    dt = dt or XSD_STRING
    if dt in _NUMERIC:
        try:
            return ("number", float(lex))
        except ValueError:
            pass
    return ("typed", lex, dt)


def superlative_word(text: str, words: list[str]) -> str | None:
    """The word that makes a question a superlative, or None: a listed one ("most", "highest", "oldest"),
    "most recently", "first"/"last" ending the question ("Which Saab went into production first?"), or an
    adjective's -est form that WordNet knows ("thickest" -> thick)."""
    low = text.lower()
    if "most recent" in low:
        return "most recently"
    for w in words:
        if w in _SUPERLATIVE_ASC or w in _SUPERLATIVE_DESC:
            return w
    m = re.search(r"\b(first|last)\s*[?.!]*\s*$", low)
    if m:
        return m.group(1)
    wn = wordnet()
    for w in words:
        if len(w) > 5 and w.endswith("est") and wn is not None:
            for base in (w[:-3], w[:-2], w[:-4]):
                if wn.synsets(base, pos="a"):
                    return w
    return None


def prefer_english(vals: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Drop literals in other languages when English (or untagged) values exist."""
    lits = [t for t, _ in vals if t.startswith('"')]
    if not lits:
        return vals
    tagged = [t for t in lits if "\"@" in t]
    if not tagged:
        return vals
    keep_en = any(t.endswith('"@en') or "\"@en-" in t for t in tagged)
    if not keep_en:
        return vals
    return [(t, x) for t, x in vals if not t.startswith('"') or "\"@" not in t or t.endswith('"@en') or "\"@en-" in t]


def _var(t: str) -> bool:
    return t.startswith("?")


def _bind(patterns, value: str):
    return tuple(tuple(value if t == VAR_X else t for t in tr) for tr in patterns)


def _num(term: str, *, years: bool = False) -> float | None:
    """A number or date as a number that orders them (a date as YYYYMMDD). ``years``: the value is compared
    with dates, so a bare whole number from 1 to 9999 is a year (DBpedia's ``founded`` holds "1926" for
    one airline and "1919-10-07" for another)."""
    lex, _lang, dt = parse_literal(term)
    if years and dt not in _DATE_DT and re.fullmatch(r"\d{1,4}", lex.strip()) and int(lex) > 0:
        return int(lex) * 10000
    if dt in _DATE_DT:
        m = re.match(r"(-?\d{1,4})(?:-(\d\d))?(?:-(\d\d))?", lex)
        if not m:
            return None
        return int(m.group(1)) * 10000 + int(m.group(2) or 0) * 100 + int(m.group(3) or 0)
    try:
        return float(lex)
    except ValueError:
        return None


def no_value(term: str) -> bool:
    """A literal with no letter or digit ("*", "-"): never an answer."""
    return term.startswith('"') and not re.search(r"[^\W_]", parse_literal(term)[0])


def is_markup(term: str) -> bool:
    """An unparsed infobox value: no value at all (:func:`no_value`) or a wiki list ("*Tokyo\\n**Haneda ...")."""
    if not term.startswith('"'):
        return False
    lex = parse_literal(term)[0]
    return no_value(term) or "\n*" in lex or lex.lstrip().startswith("*")


def _orderable(term: str) -> bool:
    """A number or date: XSD numeric and date types, and numbers in unit datatypes (DBpedia's usDollar,
    kilometre, ...)."""
    if not term.startswith('"'):
        return False
    dt = parse_literal(term)[2] or ""
    if dt in _ORDERABLE_DT:
        return True
    return bool(dt) and not dt.startswith(XSD) and not dt.endswith("langString") and _num(term) is not None


def _is_number(term: str) -> bool:
    return term.startswith('"') and _num(term) is not None and (parse_literal(term)[2] or "") not in _DATE_DT


def _same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith('"') and b.startswith('"'):
        na, nb = _num(a), _num(b)
        if na is not None and nb is not None:
            return na == nb or (str(parse_literal(a)[0]).isdigit() and str(parse_literal(b)[0]).startswith(
                parse_literal(a)[0]))
        return parse_literal(a)[0].lower() == parse_literal(b)[0].lower()
    return False


_DATE_FORM = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")   # a plain literal written as a date: "1886-10-28"


def _is_date(term: str) -> bool:
    """A date literal: typed as one, or a plain string in a date's ISO form (DBpedia's raw infobox values)."""
    value, _lang, dt = parse_literal(term)
    return (dt or "") in _DATE_DT or (dt in (None, XSD_STRING) and _DATE_FORM.fullmatch(str(value)) is not None)


def _wh_agreement(wh: str | None, answers: set[str]) -> float:
    """A small bonus when the answer type fits the wh-word ("when" -> dates, "who" -> entities)."""
    if not answers or wh is None:
        return 0.0
    sample = list(answers)[:20]
    dates = sum(1 for a in sample if a.startswith('"') and _is_date(a))
    iris = sum(1 for a in sample if a.startswith("<"))
    share_d, share_i = dates / len(sample), iris / len(sample)
    if wh == "when":
        return 0.1 * share_d - 0.15 * (1 - share_d)
    if wh in ("who", "whom", "where", "which"):
        return 0.05 * share_i - 0.1 * (1 - share_i)
    return 0.0


_AGENT_SYNSETS = frozenset(("person.n.01", "organization.n.01", "social_group.n.01"))


def _is_yes_no(text: str) -> bool:
    """A yes/no question starts with an auxiliary verb ("Is ...", "Did ...")."""
    m = re.match(r"\s*([\w']+)", text)
    return bool(m) and m.group(1).lower() in _AUX


def _head_noun(label: str) -> str:
    """The head noun of a label: the last word before "of" ("place of death"), else the last word
    ("body style", "military conflict")."""
    words = re.findall(r"[A-Za-z]+", label.split(" of ")[0])
    return words[-1].lower() if words else ""


@lru_cache(maxsize=8192)
def _noun_kind(word: str) -> float | None:
    """1.0 when one of the word's first two WordNet noun senses is a person, an organisation or a social
    group; 0.0 when it has noun senses and neither is; None when WordNet does not know it as a noun."""
    wn = wordnet()
    if wn is None or len(word) < 3:
        return None
    senses = [syn for form in sorted(word_forms(word)) for syn in wn.synsets(form, pos="n")[:2]]
    if not senses:
        return None
    return 1.0 if any(_AGENT_SYNSETS & {h.name() for path in syn.hypernym_paths() for h in path}
                      for syn in senses) else 0.0


@lru_cache(maxsize=4096)
def _wordnet_names(word: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(("class", names of the word's first noun synsets' lemmas), ("entity", pertainym names))``."""
    wn = wordnet()
    if wn is None:
        return ()
    classes, ents = [], []
    for form in sorted(word_forms(word)):
        for syn in wn.synsets(form, pos="n")[:2]:
            classes += [lemma.name().replace("_", " ").lower() for lemma in syn.lemmas()]
        for syn in wn.synsets(form, pos="a")[:2]:
            for lemma in syn.lemmas():
                ents += [p.name().replace("_", " ").lower() for p in lemma.pertainyms()]
    classes = [c for c in dict.fromkeys(classes) if c != word]
    return (("class", tuple(classes)), ("entity", tuple(dict.fromkeys(ents))))


def _name_spans(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """Capitalized names: ``(start, end, words)``, without the question words before them ("Is", "Which") and
    the punctuation after them."""
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        while words and words[0].lower() in _NOT_NAME:
            words = words[1:]
        if words:
            yield (text.find(words[0], m.start()), m.end() - (len(m.group(0)) - len(m.group(0).rstrip(".,;:"))),
                   words)


@cache
def _wordnet_synonyms(name: str) -> tuple[str, ...]:
    """The other lemma names of the noun senses of a name of several words ("Second World War": World War
    II, World War 2)."""
    wn = wordnet()
    if wn is None:
        return ()
    key = "_".join(name.split())
    out = [lm.name().replace("_", " ") for syn in wn.synsets(key, pos="n") for lm in syn.lemmas()]
    return tuple(n for n in dict.fromkeys(out) if n.lower() != name.lower())


def _first_noun_senses(word: str) -> list:
    """The first noun sense of each of the word's forms (WordNet; "vehicles" and "vehicle" share theirs)."""
    wn = wordnet()
    if wn is None:
        return []
    return list(dict.fromkeys(syn for form in sorted(word_forms(word)) for syn in wn.synsets(form, pos="n")[:1]))


def _lemma_names(synsets) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lm.name().replace("_", " ").lower() for syn in synsets for lm in syn.lemmas()))


@cache
def _wordnet_members(word: str) -> tuple[str, ...]:
    """The lemma names of the members of the word's first noun sense (WordNet member meronyms: "people" ->
    person)."""
    return _lemma_names(m for syn in _first_noun_senses(word) for m in syn.member_meronyms())


@cache
def _wordnet_kinds(word: str, depth: int = 4) -> tuple[str, ...]:
    """The lemma names of the kinds of the word's first noun sense (hyponyms, ``depth`` levels down: "vehicle"
    -> car, aircraft, ship, ...)."""
    kinds, level = [], _first_noun_senses(word)
    for _ in range(depth):
        level = [h for s in level for h in s.hyponyms()]
        kinds += level
    return _lemma_names(kinds)


__all__ = ["UnderstandConfig", "Understander", "Understood", "literal_value", "prefer_english"]
