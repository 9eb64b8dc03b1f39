"""A user's question, parsed: what it asks for, before any retrieval (question *sets* for evaluation are
generated in kgllm.eval.question_sets).

Takes: a question string and the entity mentions the index's linker found in it.
Makes: a :class:`Question` with the shape (``one_hop`` | ``two_hop`` | ``count`` | ``list``), the wh-word, the
relation words (content words outside the entity mentions, in question order, with their base forms) and
the topic mentions. Whether a question is one- or two-hop is decided later, by the relation matcher, from
which predicate chains actually leave the entity (kgllm.ask.relations): the words alone cannot say whether
"capital city" is one relation or two.

Limits of a question (length) are checked here so that every entry point (CLI, HTTP, eval) shares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import UsageError
from ..index.lexicon import morphy
from ..pull.wordnet_data import open_wordnet

MAX_QUESTION_CHARS = 500
_WORD = re.compile(r"[\w']+", re.UNICODE)
WH_WORDS = ("what", "which", "who", "whom", "whose", "where", "when", "how", "why")
# Words that carry no relation meaning in a question (kept apart from the linker's stop list, where "kind"
# and "many" are stop words but here "kind" asks for a hypernym).
STOP = frozenset("""a an the of in on at to for from by with and or is are was were be been being am does did do
it its this that these those which who whom whose what when where why how there here as if than then so
me my you your he she we they him her us them his our their one ones thing things s 's please tell give name
have has had having many much
list show find""".split())
_WHAT_IS_THE = r"^\s*(?:what|which)(?:'s|\s+(?:is|was))\s+the\s+(?:total\s+)?"   # ... "number of": a count
_COUNT_START = r"^\s*count\s+(?:the\s+)?"   # "Count the museums in Paris.", "Count the number of ..."
_COUNT = re.compile(r"\bhow\s+many\b|" + _WHAT_IS_THE + r"number\s+of\b|" + _COUNT_START, re.I)
_NUMBER_OF_START = re.compile(f"(?:{_WHAT_IS_THE}|{_COUNT_START})$", re.I)   # ... "number of": the count
_HOW_MANY_END = re.compile(r"\bhow\s+many\s+$", re.I)
_DISTINCT = frozenset({"different", "distinct", "separate", "unique"})
_LIST = re.compile(r"^\s*(list|name|enumerate)\b|^\s*(which|what)\s+\w+\s+(are|were|have|has)\b", re.I)


@dataclass
class Token:
    text: str                 # as written (lower-cased)
    start: int
    end: int
    forms: frozenset[str]     # the word and its WordNet base forms ("founded" -> found, "dogs" -> dog)


@dataclass
class Question:
    text: str
    shape: str                                  # one_hop | two_hop | count | list (two_hop set by matching)
    wh: str | None                              # what | who | where | when | which | how | None
    relation_tokens: list[Token] = field(default_factory=list)
    mentions: list = field(default_factory=list)   # kgllm.index.linker.LinkedMention, linked topic entities

    @property
    def relation_text(self) -> str:
        return " ".join(t.text for t in self.relation_tokens)


def check_question(text: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Strip a question and enforce the shared limits (non-empty, at most ``max_chars`` characters)."""
    if not isinstance(text, str):
        raise UsageError("the question must be a string")
    q = " ".join(text.split())
    if not q:
        raise UsageError("the question is empty")
    if len(q) > max_chars:
        raise UsageError(f"the question has {len(q)} characters; the limit is {max_chars}")
    return q


@lru_cache(maxsize=65536)
def word_forms(word: str) -> frozenset[str]:
    """A word with its base forms (WordNet morphy, exception lists included), lower-cased."""
    w = word.lower().strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    forms = {w}
    if len(w) > 2:
        forms.update(morphy(w))
    return frozenset(forms)


def content_tokens(text: str, skip: list[tuple[int, int]] | None = None) -> list[Token]:
    """Content words of ``text`` (not in :data:`STOP`, not inside a ``skip`` span), with their forms."""
    out = []
    for m in _WORD.finditer(text):
        if skip and any(a <= m.start() < b for a, b in skip):
            continue
        w = m.group(0).lower()
        if w.endswith("'s"):
            w = w[:-2]
        w = w.strip("'")
        if not w or w in STOP or w.isdigit():
            continue
        if w in _DISTINCT and _HOW_MANY_END.search(text[: m.start()]):
            continue  # "How many different models": distinct things counted, not the relation differentFrom
        if w == "count" and not text[: m.start()].strip():
            continue  # "Count the ...": the question's shape, no relation word
        if w == "number" and _NUMBER_OF_START.match(text[: m.start()]) and text[m.end():].lstrip().startswith("of "):
            continue  # "What is the number of models ...": the count, as "how many" (employees stay words)
        nxt = _NEXT_WORD.match(text, m.end())
        if nxt and nxt.group(1).lower() in _PARTICLES and not (skip and any(a <= nxt.start(1) < b for a, b in skip)):
            phrasal = phrasal_verb(w, nxt.group(1).lower())
            if phrasal:
                # "set up" (found), "put out" (publish): the verb and its particle are one word to WordNet.
                out.append(Token(phrasal, m.start(), nxt.end(1), word_forms(w) | {phrasal}))
                continue
        if out and out[-1].text.endswith("_" + w) and out[-1].end == m.end():
            continue  # the particle of the phrasal verb before
        out.append(Token(w, m.start(), m.end(), word_forms(w)))
    return out


_NEXT_WORD = re.compile(r"\s+([A-Za-z]+)\b")
_PARTICLES = frozenset("up out off down over in on into away back through about along".split())


@lru_cache(maxsize=8192)
def phrasal_verb(word: str, particle: str) -> str | None:
    """WordNet's lemma for a verb and its particle ("set", "up" -> "set_up"), or None."""
    wn = wordnet()
    if wn is None:
        return None
    for form in sorted(word_forms(word)):
        name = f"{form}_{particle}"
        if wn.synsets(name, pos="v"):
            return name
    return None


# Nouns after "which"/"what" that make it a "when" question.
_TIME_NOUNS = frozenset(("year", "years", "date", "day", "month", "decade", "century"))


def parse_question(text: str, mentions: list) -> Question:
    """The shape and relation words of a question, given the linker's mentions (topic entities)."""
    words = [w.lower() for w in _WORD.findall(text)]
    i = next((i for i, w in enumerate(words) if w in WH_WORDS), None)
    wh = None if i is None else words[i]
    if wh in ("which", "what") and i + 1 < len(words) and words[i + 1] in _TIME_NOUNS:
        wh = "when"   # "In which year was ... founded?" asks for a date, as "when" does
    if _COUNT.search(text):
        shape = "count"
    elif _LIST.match(text):
        shape = "list"
    else:
        shape = "one_hop"
    spans = [(m.start, m.end) for m in mentions]
    return Question(text, shape, wh, content_tokens(text, spans), list(mentions))


_WN = None


def wordnet():
    """The WordNet 3.0 reader (nltk over the files kgllm.pull uses), or None when WordNet is not installed."""
    global _WN
    if _WN is None:
        try:
            _WN, _info = open_wordnet()
        except Exception:  # noqa: BLE001 - no WordNet: synonyms, pertainyms and related words are skipped
            _WN = False
    return _WN or None


@lru_cache(maxsize=65536)
def related_forms(word: str) -> frozenset[str]:
    """Words WordNet relates to ``word``: the one-word synonyms of its commonest verb senses and the
    derivationally related forms of those ("runs" -> operate, lead; "designed" -> designer; "owns" -> owner),
    without the word's own forms. Weaker evidence than the word itself (kgllm.ask.relations)."""
    wn = wordnet()
    if wn is None:
        return frozenset()
    out: set[str] = set()
    for form in word_forms(word):
        # Verbs only: nouns in a question are mostly class words ("cars" ~ automobile would match "automobile
        # platform"), verbs are the relation's ("styled", "runs", "owns").
        for pos, n in (("v", 4),):
            for syn in wn.synsets(form, pos=pos)[:n]:
                for lemma in syn.lemmas():
                    names = [lemma.name()] + [d.name() for d in lemma.derivationally_related_forms()]
                    out.update(x.lower() for x in names if "_" not in x and "-" not in x)
    return frozenset(out - word_forms(word) - STOP)
