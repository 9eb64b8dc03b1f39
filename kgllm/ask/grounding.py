"""Answers a model writes from retrieved triples, and the check that keeps them grounded (RAFT-style).

Takes: a question, the numbered facts a model was shown (citation dicts of :mod:`kgllm.ask.answer`:
``n``, ``id``, ``s``, ``p``, ``o``, ``labels``) and the text it wrote; the extractive answer dict of the same
question.
Makes:

* :func:`build_prompt`: the one prompt format, shared by training (:mod:`kgllm.train.raft` writes it into
  ``sft/*.jsonl``) and inference (:class:`kgllm.ask.generate.Generator`): an instruction, the numbered facts
  ``subject | predicate | object [n]`` and the question. :func:`answer_text` is the target it trains:
  ``Frankfurt Airport [1] and Munich Airport [3]``, or :data:`NOT_IN_GRAPH`. The number closes each fact's
  line, so an answer and its citation are a span the model copies ("Frankfurt Airport [1]"): a 135M model
  trained for minutes on a CPU cited the wrong number for about a third of its answers when the number
  opened the line instead.
* :func:`choose_facts`: what the model is shown at inference: the extractive answer's citations, then the
  retrieved context triples, at most :data:`MAX_FACTS`; the context alone when the graph answers nothing,
  so the model can refuse.
* :class:`AnswerGrammar`: the texts of the trained form over the shown facts (their labels with their own
  numbers, or the refusal), which constrained decoding keeps the model to (:mod:`kgllm.ask.generate`);
* :func:`check_answer` -> :class:`GroundingCheck`: every cited ``[n]`` must be one of the facts; the text
  before each citation must name an answer that the cited facts hold (a fact's end that the question does
  not already name, and no end of a fact about the schema: "IATA code | domain | airline"; labels compared
  SQuAD-normalized, long literals by 80% of their words); every cited
  fact must be about what the question names (an end named in it or linked from it, or a fact sharing a
  term with such a fact: the hops of a chain), so a true fact about something else supports nothing; a
  chain's first hop that the text left uncited is added from the shown facts (``completed``);
  names and numbers the text adds must come from the question or the cited facts; a text without a
  citation is unsupported unless it is a refusal ("not in the graph", "the answer is not provided", ...).
* :func:`ground`: the answer dict after the check: a supported text is kept (``mode: generative``); an
  unsupported one, or a refusal although the extractive answerer found cited facts that answer (the text
  would contradict its evidence), falls back to the extractive answer (``mode: extractive-fallback``) or,
  when there is none, to "not in the graph" (``mode: refusal-fallback``). A supported text that names none
  of the answers the extractive answerer found (a conflict: the graph query's answer, whose facts the model
  was shown first, says otherwise) falls back to the extractive answer too. ``grounding`` records which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..eval.metrics import contains_words, normalize_answer
from ..index.lexicon import term_value
from ..rdf import DCT_SUBJECT, OWL, RDF_TYPE, RDFS, RDFS_LABEL, SCHEMA_TYPES, iri

NOT_IN_GRAPH = "not in the graph"
INSTRUCTION = ("Answer the question from the numbered facts only, citing each fact you use as [n]. "
               "If the facts do not answer it, answer: not in the graph.")
MAX_FACTS = 6           # facts shown to the model at most
FACT_CHARS = 200        # a fact's object (an abstract, a long definition) is cut to this many characters

_MARKERS = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_NUMBER = re.compile(r"\d+")
# What a model says when the facts do not answer (normalized text, whole words).
_REFUSALS = ("not in graph", "not in facts", "not provided", "not mentioned", "not given", "not stated",
             "not available", "not known", "no information", "not enough information", "no fact",
             "cannot be answered", "cannot answer", "can not answer", "cant answer", "unable to answer",
             "do not answer", "does not answer", "dont know", "do not know", "not specified", "unknown")
# Words a text may add around its answer without a fact behind them (sentence openers, connectives).
_FREE = set(normalize_answer(
    "the a an it its this that these those there here is are was were be been being has have had of in on at "
    "to for by with from as and or but not no yes so also which who whom whose what where when how answer "
    "according fact facts question graph i we you they he she his her their s").split())
# A word starting with a capital (not a sentence's first word) or holding a digit: a name or number.
_WORD = re.compile(r"[\w'’-]+")


@dataclass
class GroundingCheck:
    """Outcome of :func:`check_answer`. ``supported``: every claim is backed by a cited fact (a refusal is
    supported too: it claims nothing). ``answers``: N-Triples terms the text names as its answers, from the
    cited facts, in order of mention."""

    supported: bool
    refusal: bool
    cited: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    reason: str = ""
    agrees: bool | None = None      # with ``expected`` answers given: the answers share one of them
    completed: list[int] = field(default_factory=list)   # uncited shown facts that link a cited one (a chain)


def shown_object(c: dict) -> str:
    """A fact's object label as the prompt shows it: cut to :data:`FACT_CHARS`."""
    o = c["labels"]["o"]
    return o if len(o) <= FACT_CHARS else o[: FACT_CHARS - 1] + "…"


def fact_line(c: dict) -> str:
    lab = c["labels"]
    return f"{lab['s']} | {lab['p']} | {shown_object(c)} [{c['n']}]"


def build_prompt(question: str, facts: list[dict]) -> str:
    """The prompt of a grounded answer (training and inference): instruction, numbered facts, question."""
    lines = "\n".join(fact_line(c) for c in facts) or "(none)"
    return f"{INSTRUCTION}\n\nFacts:\n{lines}\n\nQuestion: {question}"


def answer_text(parts: list[tuple[str, list[int]]]) -> str:
    """The target text: each answer label with the numbers of the facts behind it, joined as a list
    (``A [1], B [2] and C [4]``); no parts: :data:`NOT_IN_GRAPH`."""
    items = [f"{label} " + "".join(f"[{n}]" for n in ns) for label, ns in parts]
    if not items:
        return NOT_IN_GRAPH
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def number_facts(index, ids: list[str]) -> list[dict]:
    """Numbered fact dicts (``n``, ``id``, ``s``, ``p``, ``o``, ``labels``, ``text``) of live triple ids, in
    order: the same fields as the answer's citations, labelled by the index the same way."""
    out = []
    for n, rec in enumerate(index.triples(ids), 1):
        labels = {"s": index.label(rec.s), "p": index.label(rec.p), "o": index.label(rec.o)}
        out.append({"n": n, "id": rec.id, "s": rec.s, "p": rec.p, "o": rec.o, "labels": labels,
                    "text": f"{labels['s']} {labels['p']} {labels['o']}"})
    return out


def choose_facts(index, cited_ids: list[str], context_ids: list[str], max_facts: int = MAX_FACTS) -> list[str]:
    """Triple ids to show the model, in order: the cited ones, then the retrieved context (label triples
    left out: a name is no fact to answer with), at most ``max_facts``."""
    out = list(dict.fromkeys(cited_ids))[:max_facts]
    rest = [t for t in dict.fromkeys(context_ids) if t not in out]
    for rec in index.triples(rest):
        if len(out) >= max_facts:
            break
        if rec.p != RDFS_LABEL:
            out.append(rec.id)
    return out


class AnswerGrammar:
    """The texts a grounded answer may be, for decoding constrained to them (:class:`kgllm.ask.generate.Generator`):
    :data:`NOT_IN_GRAPH` (unless ``refuse`` is false), or one or more items ``label [n]`` joined by ``", "`` or
    ``" and "`` (the targets :func:`answer_text` trains), where ``label`` is an end of fact ``n`` as the prompt
    shows it and not the end the question names (:func:`_answer_ends`), and further citations ``[m]`` may
    follow an item (:attr:`MAX_CITES` in all): facts holding the same answer, and a chain's first hop
    (:func:`_more_citations`). Every item answers by the first item's relation (:func:`_relation`): the
    answers of one query. Fact ``n`` is one the
    check would accept cited alone: about what the question names, or a chain's last hop whose first hop is
    shown (:func:`_complete`); a fact about something else supports nothing, so its ends are not offered, and
    where no fact is about what the question names the refusal is the only text. Each label is named once,
    so every text is finite. Every name in such a text comes from a shown fact and every citation exists;
    whether the text names the graph query's answers is still :func:`check_answer`'s to judge.

    :meth:`state` tells whether a text (what was decoded so far) can still become one of these texts
    (``viable``) and whether it is one already (``complete``)."""

    SEPARATORS = (", ", " and ")
    MAX_CITES = 3       # citations of one item: its own fact and the hops of a chain

    def __init__(self, facts: list[dict], question: str = "", linked: list[str] | set[str] = (),
                 refuse: bool = True):
        self.refuse = refuse
        linked = set(linked)
        anchors = [c for c in facts if c["p"] not in _HUB_PREDICATES and _named(c, question, linked)]
        # label -> [(form, the relation its fact answers by, the citations that may follow the form)]
        items: dict[str, list[tuple[str, tuple[str, str], tuple[str, ...]]]] = {}
        for c in facts:
            named = bool(_named(c, question, linked))
            if not (named or _complete([c], [c], facts, question, linked)):
                continue
            for term, label in _answer_ends(c, question, linked):
                lab = shown_object(c) if term == c["o"] else label
                if lab.strip():
                    items.setdefault(lab, []).append((f"{lab} [{int(c['n'])}]", _relation(c, term),
                                                      _more_citations(c, term, named, facts, anchors)))
        self.items = items

    def state(self, text: str, partial: bytes = b"") -> tuple[bool, bool]:
        """``partial``: the first bytes of a multi-byte character that follow the text (viable only where
        a text goes on with a character whose UTF-8 encoding starts with them)."""
        t = text[1:] if text.startswith(" ") else text     # a chat model's answer may open with a space
        viable = complete = False
        if self.refuse and _open(NOT_IN_GRAPH, t, partial):
            viable, complete = True, t == NOT_IN_GRAPH and not partial
        v, c = self._item(t, frozenset(), partial)
        return viable or v, complete or c

    def branches(self, text: str, partial: bytes = b"") -> tuple[bool, bool]:
        """Whether ``text`` can still become the refusal, and whether it can still become an answer (both
        at the start: the decoder then weighs the two, :class:`kgllm.ask.generate.Generator`)."""
        t = text[1:] if text.startswith(" ") else text
        return self.refuse and _open(NOT_IN_GRAPH, t, partial), self._item(t, frozenset(), partial)[0]

    def _item(self, t: str, used: frozenset, partial: bytes, relation: tuple[str, str] | None = None
              ) -> tuple[bool, bool]:
        """An item and what follows it; ``relation``: the first item's, which every later item shares (the
        answers of one query are the ends of one relation)."""
        viable = complete = False
        for label, forms in self.items.items():
            if label in used:
                continue
            for form, rel, more in forms:
                if relation is not None and rel != relation:
                    continue
                if t.startswith(form):
                    v, c = self._after(t[len(form):], used | {label}, partial, rel, more)
                elif _open(form, t, partial):
                    v, c = True, False
                else:
                    continue
                viable, complete = viable or v, complete or c
                if viable and complete:
                    return True, True
        return viable, complete

    def _after(self, t: str, used: frozenset, partial: bytes, relation: tuple[str, str],
               more: tuple[str, ...], cited: int = 1) -> tuple[bool, bool]:
        """After an item that cites ``cited`` facts: the end, one more citation of ``more`` (at most
        :attr:`MAX_CITES` in all, each once) or a separator and the next item."""
        if not t and not partial:
            return True, True
        viable = complete = False
        steps = [*((f"[{n}]", lambda r, u, p, n=n: self._after(r, u, p, relation, tuple(m for m in more if m != n),
                                                                cited + 1))
                   for n in (more if cited < self.MAX_CITES else ())),
                 *((sep, lambda r, u, p: self._item(r, u, p, relation))
                   for sep in (self.SEPARATORS if self._another(used, relation) else ()))]
        for nxt, then in steps:
            if t.startswith(nxt):
                v, c = then(t[len(nxt):], used, partial)
            elif _open(nxt, t, partial):
                v, c = True, False
            else:
                continue
            viable, complete = viable or v, complete or c
        return viable, complete

    def _another(self, used: frozenset, relation: tuple[str, str]) -> bool:
        """Whether an item of ``relation`` not named yet is left (else a separator would lead nowhere)."""
        return any(label not in used and any(rel == relation for _f, rel, _m in forms)
                   for label, forms in self.items.items())


def _relation(c: dict, term: str) -> tuple[str, str]:
    """The relation a fact answers by: its predicate's label (``dbo:`` and ``dbp:`` properties of one name
    alike) and which end the answer is."""
    return normalize_answer(c["labels"]["p"]), "o" if term == c["o"] else "s"


def _more_citations(c: dict, term: str, named: bool, facts: list[dict], anchors: list[dict]) -> tuple[str, ...]:
    """The facts an answer item citing fact ``c`` for its end ``term`` may cite as well, as the trained targets
    do: other facts holding the same answer, and, where ``c`` is about nothing the question names (a chain's
    last hop), the first hop linking it to what the question names (not through a class or a category)."""
    far = {c["s"], c["o"]} - {term}
    out = []
    for m in facts:
        if m is c:
            continue
        ends = {m["s"], m["o"]}
        if term in ends or (not named and m in anchors and _shares_entity(m, far)):
            out.append(str(int(m["n"])))
    return tuple(out)


def _open(form: str, t: str, partial: bytes) -> bool:
    """``t`` can grow into ``form``; with ``partial`` (the first bytes of a character that follow ``t``),
    only where ``form``'s next character starts with those bytes."""
    if not form.startswith(t):
        return False
    if not partial:
        return True
    nxt = form[len(t)].encode() if len(form) > len(t) else b""
    return len(nxt) > len(partial) and nxt.startswith(partial)


def is_refusal(text: str) -> bool:
    t = normalize_answer(text.replace("'", "").replace("’", ""))
    return any(contains_words(t, r) for r in _REFUSALS)


def _mentions(segment: str, label: str) -> bool:
    """``label`` is named in ``segment`` (both raw): whole normalized words, or for a long literal (a
    definition) at least 80% of its words."""
    seg, lab = normalize_answer(segment), normalize_answer(label)
    if contains_words(seg, lab):
        return True
    words = lab.split()
    if len(words) >= 5:
        have = set(seg.split())
        return sum(w in have for w in words) >= 0.8 * len(words)
    return False


def _named(fact: dict, question: str, linked: set[str]) -> list[int]:
    """Which ends of a fact (0: subject, 1: object) the question names: by label, longer labels first
    ("toy spaniel" before "spaniel"), then the entities the retrieval linked in it (aliases)."""
    q = normalize_answer(question)
    ends = [(fact["s"], fact["labels"]["s"]), (fact["o"], fact["labels"]["o"])]
    by_label = sorted(((len(normalize_answer(lab)), i) for i, (_t, lab) in enumerate(ends)
                       if normalize_answer(lab) and contains_words(q, normalize_answer(lab))), reverse=True)
    return [i for _n, i in by_label] + [i for i, (t, _lab) in enumerate(ends) if t in linked and
                                         i not in {j for _n, j in by_label}]


def _answer_ends(fact: dict, question: str, linked: set[str] = frozenset()) -> list[tuple[str, str]]:
    """The (term, label) ends of a fact that can be an answer: not the end the question names (the topic);
    none of a fact about the schema (:func:`schema_fact`)."""
    if schema_fact(fact):
        return []
    ends = [(fact["s"], fact["labels"]["s"]), (fact["o"], fact["labels"]["o"])]
    named = _named(fact, question, linked)
    return [e for i, e in enumerate(ends) if i != named[0]] if named else ends


# Axioms of RDFS and OWL: a triple with one of these predicates relates classes or properties.
SCHEMA_AXIOMS = frozenset(iri(x) for x in (
    RDFS + "domain", RDFS + "range", RDFS + "subClassOf", RDFS + "subPropertyOf", OWL + "equivalentClass",
    OWL + "equivalentProperty", OWL + "inverseOf", OWL + "disjointWith"))


def schema_fact(fact: dict) -> bool:
    """``fact`` is about the ontology, not the things it describes ("IATA code | domain | airline", "skyscraper |
    sub class of | building", "alliance | type | object property"): it answers no question about things
    ("Which airline runs SKYPASS?" is not "IATA code"), as the RAFT examples leave the ontology's own terms
    out of their answers (kgllm.train.raft)."""
    return fact["p"] in SCHEMA_AXIOMS or (fact["p"] == RDF_TYPE and fact["o"] in SCHEMA_TYPES)


def _unanchored(facts: list[dict], question: str, linked: set[str]) -> list[dict]:
    """Cited facts not about what the question names: neither end named, and no term shared with a fact
    that is (transitively: the hops of a chain)."""
    anchored = [c for c in facts if _named(c, question, linked)]
    terms = {t for c in anchored for t in (c["s"], c["o"])}
    rest = [c for c in facts if c not in anchored]
    grew = True
    while rest and grew:
        grew = False
        for c in list(rest):
            if c["s"] in terms or c["o"] in terms:
                terms |= {c["s"], c["o"]}
                rest.remove(c)
                grew = True
    return rest


def _unknown_names(segment: str, vocab: set[str]) -> list[str]:
    """Names (capitalized words not opening a sentence) and numbers in ``segment`` that are in neither the
    question nor the cited facts."""
    out = []
    first = True
    for m in _WORD.finditer(segment):
        w = m.group()
        start = segment[: m.start()].rstrip()
        opener = first or start.endswith((".", "!", "?", ":"))
        first = False
        norm = normalize_answer(w)
        if not norm or all(x in vocab or x in _FREE for x in norm.split()):
            continue
        if _NUMBER.search(w) or (w[0].isupper() and not opener):
            out.append(w)
    return out


def _fact_text(c: dict) -> str:
    return " ".join(c["labels"][k] for k in ("s", "p", "o"))


def _vocab(*texts: str) -> set[str]:
    """The normalized words of ``texts``, also as :func:`_unknown_names` splits them: normalization removes
    only ASCII punctuation, so "Air France–KLM" (an en dash) is one word to it but three names to the text."""
    return {w for t in texts for piece in (t, *_WORD.findall(t)) for w in normalize_answer(piece).split()}


def check_answer(text: str, facts: list[dict], question: str = "", expected: list[str] | None = None,
                 linked: list[str] | set[str] = ()) -> GroundingCheck:
    """Check a generated answer against the numbered ``facts`` it was written from (see the module doc).
    ``expected``: answer terms to compare with (the extractive ones), reported as ``agrees``. ``linked``:
    N-Triples terms of the entities the retrieval linked in the question (it names them, maybe by an alias)."""
    linked = set(linked)
    text = (text or "").strip()
    by_n = {int(c["n"]): c for c in facts}
    cited: list[int] = []
    runs = []   # (text before the markers, the numbers they cite)
    pos = 0
    for m in _MARKERS.finditer(text):
        ns = [int(x) for x in re.findall(r"\d+", m.group())]
        runs.append((text[pos:m.start()], ns))
        cited += [n for n in ns if n not in cited]
        pos = m.end()
    tail = text[pos:]
    if not text:
        return GroundingCheck(False, False, reason="empty answer")
    if is_refusal(text):
        return GroundingCheck(True, True, cited, reason="refusal")
    if not cited:
        return GroundingCheck(False, False, reason="the answer cites no fact")
    missing = [n for n in cited if n not in by_n]
    if missing:
        return GroundingCheck(False, False, cited, reason=f"cites [{missing[0]}], which is not one of the "
                              f"{len(by_n)} facts")
    off = _unanchored([by_n[n] for n in cited], question, linked)
    completed: list[int] = []
    if off:
        completed = _complete(off, [by_n[n] for n in cited], facts, question, linked)
        if not completed:
            return GroundingCheck(False, False, cited, reason=f"cites [{off[0]['n']}], a fact about nothing the "
                                  "question names")
    answers: list[str] = []
    bridges = _bridges([by_n[n] for n in cited + completed])
    for seg, ns in runs:
        cf = [by_n[n] for n in ns]
        found = [t for c in cf for t, lab in _answer_ends(c, question, linked)
                 if _mentions(seg, lab) or (t == c["o"] and _mentions(seg, shown_object(c)))]
        if not found:
            where = "".join(f"[{n}]" for n in ns)
            schema = next((c for c in cf if schema_fact(c)), None)
            if schema is not None:
                return GroundingCheck(False, False, cited, reason=f"cites [{schema['n']}], a fact about the "
                                      "schema (classes and properties), which answers no question about things")
            return GroundingCheck(False, False, cited, reason=f"the text before {where} names nothing the "
                                  "cited fact(s) hold beyond the question")
        unknown = _unknown_names(seg, _vocab(question, *(_fact_text(c) for c in cf)))
        if unknown:
            return GroundingCheck(False, False, cited, reason=f"names {unknown[0]!r}, which no fact it cites "
                                  "holds")
        main = [t for t in found if t not in bridges] or found
        answers += [t for t in main if t not in answers]
    unknown = _unknown_names(tail, _vocab(question, *(_fact_text(by_n[n]) for n in cited)))
    if unknown:
        return GroundingCheck(False, False, cited, reason=f"names {unknown[0]!r} after its last citation, "
                              "without a fact")
    agrees = None
    if expected is not None:
        agrees = bool({term_value(a) for a in answers} & {term_value(e) for e in expected})
    reason = "every claim cites a fact that holds it"
    if completed:
        reason += (" (the chain completed with " + "".join(f"[{n}]" for n in completed)
                   + ", the shown fact linking it to what the question names)")
    return GroundingCheck(True, False, cited, answers, reason, agrees, completed)


# Predicates whose objects are hubs (classes, categories): a term shared through them links unrelated things.
_HUB_PREDICATES = frozenset({RDF_TYPE, DCT_SUBJECT})


def _complete(off: list[dict], cited: list[dict], facts: list[dict], question: str, linked: set[str]) -> list[int]:
    """The shown facts that link each cited fact about nothing the question names to something it names: a
    chain's first hop the text left uncited ("Trollhättan [2]" citing ``Saab Automobile | city |
    Trollhättan`` only, for "In which city is the maker of the Saab 9000?", when [1] is ``Saab 9000 |
    manufacturer | Saab Automobile``). One hop per fact: a fact that is about what the question names and
    shares an entity with it; not through a class or a category (``X | type | Company`` links every company
    to every other). Empty when any cited fact stays unlinked: the text is then unsupported."""
    rest = [c for c in facts if c not in cited and c["p"] not in _HUB_PREDICATES]
    anchors = [c for c in rest if _named(c, question, linked)]
    added: list[int] = []
    for c in off:
        ends = {c["s"], c["o"]} if c["p"] not in _HUB_PREDICATES else {c["s"]}
        link = next((a for a in anchors if _shares_entity(a, ends)), None)
        if link is None:
            return []
        if int(link["n"]) not in added:
            added.append(int(link["n"]))
    return added


def _shares_entity(fact: dict, terms: set[str]) -> bool:
    """An end of ``fact`` is one of ``terms`` and an entity (an IRI): the link between a chain's two hops (a
    shared literal, "1990", links nothing)."""
    return any(t.startswith("<") for t in {fact["s"], fact["o"]} & terms)


def _bridges(facts: list[dict]) -> set[str]:
    """Terms that link two cited facts (the middle of a two-hop chain): named on the way, not the answer."""
    seen: dict[str, int] = {}
    for c in facts:
        for t in {c["s"], c["o"]}:
            seen[t] = seen.get(t, 0) + 1
    return {t for t, k in seen.items() if k > 1}


# Answers computed by a query over the facts (a count, yes/no, the largest): the model does not compute them.
COMPUTED_SHAPES = ("count", "yes_no", "superlative")


def linked_entities(out: dict) -> list[str]:
    """The IRIs an answer dict says the question names: the entities the retrieval linked (``seeds``) and the
    topic its query started from ("Amsterdam Schiphol" -> Amsterdam Airport Schiphol), which the linker
    may have missed."""
    topic = (out.get("topic") or {}).get("iri")
    return list(dict.fromkeys([*(out.get("seeds") or []), *([topic] if topic else [])]))


def linked_terms(out: dict) -> set[str]:
    """:func:`linked_entities` as N-Triples terms (``<IRI>``), the form the facts' ends have."""
    return {f"<{x}>" for x in linked_entities(out)}


def ground(out: dict, generated: str, facts: list[dict], question: str) -> dict:
    """The answer dict (``out``: the extractive one of the same question) after checking ``generated``,
    written from ``facts``: kept when supported, else the fallback; ``grounding`` says which (docs/ask.md)."""
    expected = [a["term"] for a in out["answers"]] if out["supported"] else None
    chk = check_answer(generated, facts, question, expected, linked=linked_terms(out))
    g = {"checked": True, "supported": chk.supported, "refusal": chk.refusal, "conflict": False,
         "cited": chk.cited, "completed": chk.completed, "fallback": None, "reason": chk.reason,
         "generated": generated, "agrees": chk.agrees, "retry": None,
         "answers": [term_value(t) for t in chk.answers], "facts": [c["id"] for c in facts]}
    res = dict(out)
    if chk.refusal and out["supported"]:
        # "The answer is not provided." above a cited fact that answers: the text contradicts its evidence.
        g.update(supported=False, fallback="extractive",
                 reason="refused, but the retrieved facts answer the question (the extractive answer cites them)")
        res["mode"] = "extractive-fallback"
    elif chk.refusal:
        res.update(answer=NOT_IN_GRAPH, mode="generative")
    elif chk.supported and chk.agrees is False:
        found = _join_labels([a["label"] for a in out["answers"]])
        g.update(conflict=True, fallback="extractive",
                 reason=f"its cited facts hold what it says, but it names none of the answers the graph query "
                        f"found ({found}): the extractive answer is shown")
        res["mode"] = "extractive-fallback"
    elif chk.supported:
        by_n = {int(c["n"]): c for c in facts}
        cited = [by_n[n] for n in chk.completed + chk.cited]   # a completed chain: its first hop first
        labels = {c[k]: c["labels"][k] for c in cited for k in ("s", "o")}
        res.update(answer=generated, mode="generative", supported=True, citations=cited,
                   answers=[{"term": t, "value": term_value(t), "label": labels[t],
                             "kind": "iri" if t.startswith("<") else "literal"} for t in chk.answers],
                   total=len(chk.answers))
    elif out["supported"]:
        g["fallback"] = "extractive"
        res["mode"] = "extractive-fallback"
    else:
        g["fallback"] = "not_in_graph"
        res.update(answer=NOT_IN_GRAPH, mode="refusal-fallback")
    res["grounding"] = g
    return res


def skipped(reason: str) -> dict:
    """``grounding`` of an answer no model wrote (a computed shape)."""
    return {"checked": False, "supported": None, "refusal": False, "conflict": False, "cited": [], "completed": [],
            "retry": None, "fallback": None, "reason": reason, "generated": None, "agrees": None, "answers": [], "facts": []}


def _join_labels(labels: list[str], most: int = 3) -> str:
    shown = ", ".join(labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")
