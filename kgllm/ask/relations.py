"""Relation matching: which predicates a question's words ask for.

Takes: the relation words of a question (kgllm.ask.question) and predicate terms of the graph, with the
index (labels).
Makes: a score in [0, ~1.25] per predicate and the question words it used, from

1. **descriptions** of each predicate: its label in the graph (``rdfs:label`` or the split local name,
   ``dbo:hubAirport`` -> "hub airport"), the corpus stage's curated verbalization templates
   (``kgllm/corpus/data/lexicon.json``: label, sentence, question phrasings such as "Where was
   {s} born?"), and the few WordNet phrasings of kgllm.ask.phrasings ("a kind of" -> ``wn:hypernym``);
2. **lexical overlap**: a description's content words found among the question's (both reduced to WordNet
   base forms, "founded" ~ "found"); score = the share of the description's words matched, plus 0.25 when
   the description's wh-word is the question's ("When was X born" picks the birth date, "Where" the place),
   plus 0.05 per question word explained. A description word found only among a question word's WordNet
   relatives (synonyms of its commonest senses and their derivations: "runs" ~ "operate", "designed" ~
   "designer") counts :data:`RELATED_FACTOR` of a word.

It is one feature of the candidate ranking (kgllm.ask.understand); words no description shares are the
ranker's (kgllm.ask.ranker).
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass

from .phrasings import curated_phrasings
from .question import WH_WORDS, Token, content_tokens, related_forms

WH_BONUS = 0.25
# Among equally covered descriptions, the one explaining more question words wins ("founding year" over
# "founded" for "the founding year of X").
USED_BONUS = 0.05
# A description word matched only through WordNet ("runs" ~ lead, "designed" ~ designer) counts this much.
RELATED_FACTOR = 0.6
# A description word whose "of" takes another end than the question's ("What are the kinds of {s}?" against
# "What kind of thing is a poodle?") counts this much: the two ask in opposite directions.
SLOT_FACTOR = 0.5
# What follows a word's "of" (articles skipped): in a question, a mention or anything else ("a kind of?":
# nothing the question names, the answer); in a description, "{s}" or "{o}" (the slot it takes) or a word.
_OF = r"\s+of\b\s*(?:(?:the|a|an)\s+)?"
_OF_NEXT = re.compile(_OF, re.I)
_OF_SLOT = re.compile(_OF + r"\{([so])\}")


@contextlib.contextmanager
def one_thread():
    """Encode one short question on one CPU thread: intra-op threads only add synchronisation for a single
    sentence, and on a busy machine they made the encoding 20x slower (2 s instead of 0.1 s, measured).
    torch's thread count is per calling thread (OpenMP), so this is safe from several threads at once."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass(frozen=True)
class Description:
    text: str
    tokens: tuple[frozenset[str], ...]   # content words (forms) of the phrasing, {s}/{o} removed
    wh: str | None
    weight: float = 1.0                  # < 1 for statements ("{s} is a subsidiary of {o}.") vs questions/labels
    # Per content word: the slot its "of" takes ("kinds of {s}": "s"), "" for another "of" or none; empty
    # for a description without slots (a label), which says nothing about the order of the words.
    of_slots: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlotContext:
    """Where the question's "of"s point, for the hop of a candidate that starts at a mentioned entity: the
    relation tokens followed by "of" and that mention (``of_topic``), or by "of" and anything else
    (``of_other``); ``role``: the slot the mention fills in the hop's descriptions ("s" for a lookup, "o"
    for an inverse hop)."""
    role: str
    of_topic: frozenset[int]
    of_other: frozenset[int]

    @classmethod
    def of(cls, text: str, tokens: list[Token], topic_spans, direction: str) -> SlotContext | None:
        """The context of a hop from the mention at ``topic_spans`` (``direction`` "out": a lookup, it fills
        {s}; "in": an inverse hop, {o}): which of the question's relation ``tokens`` an "of" links to that
        mention ("the kinds of poodle") and which to something else ("What kind of thing is ..."). None
        without a mention in the text."""
        if not topic_spans:
            return None
        starts = {a for a, _b in topic_spans}
        of_topic, of_other = set(), set()
        for j, t in enumerate(tokens):
            m = _OF_NEXT.match(text, t.end)
            if m:
                (of_topic if m.end() in starts else of_other).add(j)
        return cls("s" if direction == "out" else "o", frozenset(of_topic), frozenset(of_other))

    def agrees(self, j: int, slot: str) -> bool:
        """Whether question token ``j`` and a description word whose "of" takes ``slot`` ("" for none) ask
        in the same direction."""
        if j in self.of_topic:
            return slot == self.role
        if j in self.of_other:
            return slot != self.role
        return True


@dataclass
class RelMatch:
    predicate: str          # N-Triples IRI term
    score: float
    used: frozenset[int]    # indices of the question's relation tokens it consumed
    how: str                # lexical


def _describe(text: str) -> Description:
    t = text.replace("{s}", "   ").replace("{o}", "   ")   # same length: token offsets stay those of ``text``
    found = content_tokens(t)
    toks = tuple(tok.forms for tok in found)
    slots = ()
    if "{s}" in text or "{o}" in text:
        slots = tuple(m.group(1) if (m := _OF_SLOT.match(text, tok.end)) else "" for tok in found)
    words = t.lower().split()
    wh = next((w.strip("?,.") for w in words if w.strip("?,.") in WH_WORDS), None)
    # A statement verbalizes the fact from the subject's side ("{s} is a subsidiary of {o}." for
    # dbo:parentCompany), so its words can name the inverse relation: it loses ties to labels and questions.
    weight = 0.9 if "{o}" in text and not text.rstrip().endswith("?") else 1.0
    return Description(text, toks, wh, weight, slots)


class RelationMatcher:
    """Scores predicates against a question's relation words; caches their descriptions."""

    def __init__(self, index):
        self.index = index
        self._desc: dict[str, list[Description]] = {}

    def descriptions(self, pred: str) -> list[Description]:
        d = self._desc.get(pred)
        if d is None:
            iri = pred[1:-1]
            texts = [self.index.label(pred)] + curated_phrasings().get(iri, [])
            seen, d = set(), []
            for t in texts:
                if t and t not in seen:
                    seen.add(t)
                    desc = _describe(t)
                    if desc.tokens:
                        d.append(desc)
            self._desc[pred] = d
        return d

    def lexical(self, pred: str, tokens: list[Token], wh: str | None, exclude: frozenset[int] = frozenset(),
                slots: SlotContext | None = None) -> RelMatch:
        """Best description of ``pred`` by word overlap with the question tokens not in ``exclude``. With
        ``slots``, a description word whose "of" takes the other end than the question's counts
        :data:`SLOT_FACTOR`: "kinds of {s}" (hyponyms) for "What kind of thing is a poodle?", whose "of"
        takes no mention, and "a kind of" (hypernym) for "What are the kinds of poodle?"."""
        best = RelMatch(pred, 0.0, frozenset(), "lexical")
        for d in self.descriptions(pred):
            used, hit = set(), 0.0
            for i, forms in enumerate(d.tokens):
                js = [j for j, t in enumerate(tokens) if j not in exclude and t.forms & forms]
                if js:
                    if slots is not None and d.of_slots and not any(slots.agrees(j, d.of_slots[i]) for j in js):
                        hit += SLOT_FACTOR
                    else:
                        hit += 1
                    used.update(js)
                    continue
                js = [j for j, t in enumerate(tokens) if j not in exclude and related_forms(t.text) & forms]
                if js:
                    hit += RELATED_FACTOR
                    used.update(js)
            if not hit:
                continue
            score = d.weight * hit / len(d.tokens) + (WH_BONUS if d.wh and d.wh == wh else 0.0) \
                + USED_BONUS * len(used)
            if score > best.score or (score == best.score and len(used) > len(best.used)):
                best = RelMatch(pred, score, frozenset(used), "lexical")
        return best
