"""Sentence planning and annotation: one annotated paragraph per entity.

Takes: a :class:`~kgllm.corpus.kg.KG` and a :class:`~kgllm.corpus.lexicon.RelationLexicon`.
Makes: for each entity an :class:`EntityPlan`: its fact groups (one per predicate, multi-valued
predicates merged into one group) and a document::

    {"id", "text", "entity": IRI,
     "spans": [{"start", "end", "surface", "iri", "types": [IRI...]}],   # char offsets into text
     "sentences": [{"start", "end", "triple_ids": [...]}]}

Planning: the abstract (cleaned) first, then "X is a <class>.", then the facts in lexicon order; facts
sharing a predicate become one sentence ("... has its hub at A and B."); two consecutive verb-phrase
sentences share their subject ("X was formed in 1974 and is headquartered in Y."); after the first
mention the subject alternates with a referring expression ("It", or a person's surname). WordNet
synsets get a definition-style entry (word, part of speech, gloss, examples, synonyms, relations).
Pronoun mentions are spans too, marked ``"ref": "pronoun"`` (left out of the CoNLL export).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field

from ..rdf import (
    ONTOLEX_IS_LEXICALIZED_SENSE_OF,
    RDF_TYPE,
    WN_DEFINITION,
    WN_PART_OF_SPEECH,
    parse_literal,
    triple_id,
)
from .clean import clean_text
from .kg import (
    ABSTRACT_PREDICATES,
    KG,
    POS_NAMES,
    ROLE_ABSTRACT,
    ROLE_FACT,
    ROLE_GLOSS,
    WN_EXAMPLE,
)
from .lexicon import PhraseTemplate, RelationLexicon
from .render import render_literal, split_camel


@dataclass
class EntityMention:
    surface: str
    iri: str | None = None          # plain IRI (no angle brackets); None for literals
    types: tuple[str, ...] = ()
    pronoun: bool = False


@dataclass
class Group:
    """The facts of one subject and predicate (a multi-valued predicate is one group)."""

    subject: str
    predicate: str
    objects: list[str]
    ids: list[str]
    template: PhraseTemplate


@dataclass
class EntityPlan:
    entity: str                                   # N-Triples term
    groups: list[Group] = field(default_factory=list)
    doc: dict | None = None
    truncated: int = 0                            # facts beyond max_facts_per_entity


def doc_id(entity: str) -> str:
    return "doc-" + hashlib.blake2b(entity.encode(), digest_size=8).hexdigest()


def plain(term: str) -> str:
    """``<x>`` -> ``x`` (the JSON fields named "IRI" hold plain IRIs)."""
    return term[1:-1] if term.startswith("<") else term


class TextBuilder:
    """Concatenates text pieces while recording entity spans and sentence boundaries."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.spans: list[dict] = []
        self.sentences: list[dict] = []
        self._start = 0

    def text(self, s: str) -> None:
        self.parts.append(s)
        self.pos += len(s)

    def mention(self, m: EntityMention, surface: str | None = None) -> None:
        surface = m.surface if surface is None else surface
        start = self.pos
        self.text(surface)
        if m.iri is not None and surface:
            span = {"start": start, "end": self.pos, "surface": surface, "iri": m.iri, "types": list(m.types)}
            if m.pronoun:
                span["ref"] = "pronoun"
            self.spans.append(span)

    def begin(self) -> None:
        self._start = self.pos

    def end(self, triple_ids) -> None:
        self.sentences.append({"start": self._start, "end": self.pos, "triple_ids": sorted(set(triple_ids))})

    def value(self) -> str:
        return "".join(self.parts)


_SLOT = re.compile(r"(\{s\}|\{o\})")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def render(tb: TextBuilder, template: str, subj: EntityMention, objs: list[EntityMention], *,
           skip_subject: bool = False, final: bool = True) -> None:
    """Fill a template into the builder. ``skip_subject`` drops a leading ``"{s} "`` (aggregation);
    ``final=False`` drops the closing period (another verb phrase follows)."""
    parts = [p for p in _SLOT.split(template) if p != ""]
    if skip_subject:
        assert parts[0] == "{s}" and parts[1].startswith(" ")
        parts = [parts[1][1:], *parts[2:]]
    if not final and parts[-1].endswith("."):
        parts[-1] = parts[-1][:-1]
    first = not skip_subject
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "{s}":
            nxt = parts[i + 1] if i + 1 < len(parts) else ""
            surface = subj.surface
            if nxt.startswith("'s") and not nxt[2:3].isalpha():
                if subj.pronoun:
                    surface = {"it": "its", "he": "his", "she": "her", "they": "their"}.get(surface.lower(),
                                                                                             surface + "'s")
                    parts[i + 1] = nxt[2:]
                elif surface.endswith("s"):
                    parts[i + 1] = "'" + nxt[2:]
            tb.mention(subj, _cap(surface) if first else surface)
        elif part == "{o}":
            nxt = parts[i + 1] if i + 1 < len(parts) else ""
            word = re.match(r" ([A-Za-z]+(?: [a-z]+)?)\b", nxt)
            if word and objs and objs[-1].surface.lower().endswith(" " + word.group(1).lower()):
                parts[i + 1] = nxt[word.end():]  # "a V8 engine engine" -> "a V8 engine"
            for k, m in enumerate(objs):
                if k:
                    tb.text(" and " if k == len(objs) - 1 else ", ")
                tb.mention(m, _cap(m.surface) if first and k == 0 else m.surface)
        else:
            tb.text(_cap(part) if first else part)
        first = False
        i += 1


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class Planner:
    def __init__(self, kg: KG, lexicon: RelationLexicon, *, include_abstracts: bool = True, max_facts: int = 200):
        self.kg = kg
        self.lex = lexicon
        self.include_abstracts = include_abstracts
        self.max_facts = max_facts

    # ------------------------------------------------------------------ mentions

    def mention(self, term: str) -> EntityMention:
        if term.startswith('"'):
            return EntityMention(render_literal(term, self.kg.language))
        return EntityMention(self.kg.name(term), plain(term),
                             tuple(sorted(plain(t) for t in self.kg.types.get(term, ()))))

    def referring(self, term: str) -> EntityMention:
        """Second mention: a pronoun, or a person's surname."""
        m = self.mention(term)
        if self.kg.is_person(term):
            words = m.surface.split()
            return EntityMention(words[-1], m.iri, m.types) if len(words) > 1 else m
        return EntityMention("it", m.iri, m.types, pronoun=True)

    def fact_text(self, s: str, p: str, objects: list[str]) -> str:
        """One standalone sentence for the facts (s, p, o) for o in objects, with the full name."""
        tb = TextBuilder()
        render(tb, self.lex.template(p).sentence, self.mention(s), [self.mention(o) for o in objects])
        return tb.value()

    def fact_doc(self, s: str, p: str, objects: list[str]) -> TextBuilder:
        tb = TextBuilder()
        tb.begin()
        render(tb, self.lex.template(p).sentence, self.mention(s), [self.mention(o) for o in objects])
        tb.end(triple_id(s, p, o) for o in objects)
        return tb

    # ------------------------------------------------------------------ planning

    def subjects(self) -> list[str]:
        """Entities that get a document: subjects with facts, abstracts or glosses (senses fold into synsets)."""
        out = set()
        for s, po in self.kg.out.items():
            if s.startswith("_:"):
                continue
            owner = self.kg.synset_of(s) or s
            for p, o in po:
                if self.kg.role(s, p, o) in (ROLE_FACT, ROLE_ABSTRACT, ROLE_GLOSS):
                    out.add(owner)
                    break
        return sorted(out)

    def groups(self, entity: str) -> tuple[list[Group], int]:
        kg = self.kg
        subjects = [entity, *kg.senses_of_synset.get(entity, ())]
        by: dict[tuple[str, str], list[str]] = defaultdict(list)
        for s in subjects:
            for p, o in kg.out.get(s, ()):
                if kg.role(s, p, o) == ROLE_FACT:
                    by[(s, p)].append(o)
        groups = []
        budget = self.max_facts
        truncated = 0
        keys = sorted(by, key=lambda k: (k[0] != entity, self.lex.sort_key(k[1]), k[0]))
        for s, p in keys:
            objs = sorted(set(by[(s, p)]), key=lambda o: (kg.name(o) if o.startswith("<") else o, o))
            if budget <= 0:
                truncated += len(objs)
                continue
            if len(objs) > budget:
                truncated += len(objs) - budget
                objs = objs[:budget]
            budget -= len(objs)
            groups.append(Group(s, p, objs, [triple_id(s, p, o) for o in objs], self.lex.template(p)))
        return groups, truncated

    def plan(self, entity: str) -> EntityPlan:
        groups, truncated = self.groups(entity)
        plan = EntityPlan(entity, groups, truncated=truncated)
        tb = TextBuilder()
        if self.kg.is_synset(entity):
            self._synset_header(tb, entity)
        else:
            self._abstract(tb, entity)
            self._type_sentence(tb, entity)
        self._facts(tb, entity, groups)
        if tb.sentences:
            plan.doc = {"id": doc_id(entity), "text": tb.value(), "entity": plain(entity),
                        "spans": tb.spans, "sentences": tb.sentences}
        return plan

    def _sep(self, tb: TextBuilder, paragraph: bool = False) -> None:
        if tb.pos:
            tb.text("\n\n" if paragraph else " ")

    def _abstract(self, tb: TextBuilder, entity: str) -> None:
        if not self.include_abstracts:
            return
        best = None
        for p, o in self.kg.out.get(entity, ()):
            if p in ABSTRACT_PREDICATES and self.kg.role(entity, p, o) == ROLE_ABSTRACT:
                text = clean_text(parse_literal(o)[0])
                if text and (best is None or (len(text), o) > (len(best[0]), best[2])):
                    best = (text, p, o)
        if best is None:
            return
        text, p, o = best
        # Mentions inside free text: the entity itself and the entities its facts point to, by exact name.
        cands = {entity: self.mention(entity)}
        for pred, obj in self.kg.out.get(entity, ()):
            if obj.startswith("<") and obj not in cands and self.kg.role(entity, pred, obj) == ROLE_FACT:
                cands[obj] = self.mention(obj)
        found = []
        for term, m in cands.items():
            if len(m.surface) < 3:
                continue
            flags = re.IGNORECASE if term == entity else 0  # "ELCAT" is the abstract's "Elcat"
            for mt in re.finditer(r"(?<!\w)" + re.escape(m.surface) + r"(?!\w)", text, flags):
                found.append((mt.start(), -(mt.end() - mt.start()), term, m))
        if not any(f[2] == entity for f in found):
            # Wikipedia's first sentence names its topic: "ELCAT is ..." for "Elcat Electric Vehicles".
            lead = re.match(r"(?:The )?([^,(;]{2,80}?)(?: \([^)]*\))? (?:is|was|are|were) ", text)
            name_words = {w.casefold() for w in cands[entity].surface.split()}
            if lead and {w.casefold() for w in lead.group(1).split()} & name_words:
                found.append((lead.start(1), -(lead.end(1) - lead.start(1)), entity, cands[entity]))
        found.sort(key=lambda f: (f[0], f[1], f[2]))
        self._sep(tb, paragraph=True)
        base = tb.pos
        tb.begin()
        tb.text(text)
        last_end = -1
        for start, neg_len, _, m in found:
            if start < last_end:
                continue  # overlapping mentions: keep the earlier, longer one
            end = start - neg_len
            tb.spans.append({"start": base + start, "end": base + end, "surface": text[start:end], "iri": m.iri,
                             "types": list(m.types)})
            last_end = end
        tb.end([triple_id(entity, p, o)])

    def _type_sentence(self, tb: TextBuilder, entity: str) -> None:
        t = self.kg.main_type(entity)
        if t is None:
            return
        label = self.kg.label_of(t) or split_camel(plain(t).rsplit("/", 1)[-1])
        label = label if label[:2].isupper() else label[:1].lower() + label[1:]
        self._sep(tb, paragraph=True)
        tb.begin()
        tb.mention(self.mention(entity), _cap(self.kg.name(entity)))
        tb.text(f" is {article(label)} ")
        tb.mention(EntityMention(label, plain(t), ()))
        tb.text(".")
        tb.end([triple_id(entity, RDF_TYPE, t)])

    def _synset_header(self, tb: TextBuilder, entity: str) -> None:
        kg = self.kg
        po = kg.out.get(entity, ())
        defs = sorted(o for p, o in po if p == WN_DEFINITION)
        examples = sorted(o for p, o in po if p == WN_EXAMPLE)
        pos = sorted(o for p, o in po if p == WN_PART_OF_SPEECH)
        tb.begin()
        ids = []
        tb.mention(self.mention(entity))
        if pos:
            tb.text(f" ({POS_NAMES.get(plain(pos[0]).rsplit('#', 1)[-1], plain(pos[0]).rsplit('#', 1)[-1])})")
            ids.append(triple_id(entity, WN_PART_OF_SPEECH, pos[0]))
        if defs:
            gloss = "; ".join(clean_text(parse_literal(d)[0]) for d in defs)
            tb.text(f": {gloss}.")
            ids += [triple_id(entity, WN_DEFINITION, d) for d in defs]
        else:
            tb.text(".")
        tb.end(ids)
        if examples:
            tb.text(" ")
            tb.begin()
            quoted = ", ".join(f'"{clean_text(parse_literal(e)[0])}"' for e in examples)
            tb.text(f"For example: {quoted}.")
            tb.end(triple_id(entity, WN_EXAMPLE, e) for e in examples)
        # Synonyms: the other words whose senses lexicalize this synset.
        main = kg.name(entity)
        syn = [(kg.name(s), s) for s in kg.senses_of_synset.get(entity, ()) if kg.name(s) != main]
        if syn:
            syn.sort()
            tb.text(" ")
            tb.begin()
            tb.text("Synonyms: ")
            for k, (word, sense) in enumerate(syn):
                if k:
                    tb.text(" and " if k == len(syn) - 1 else ", ")
                tb.mention(EntityMention(word, plain(sense), tuple(sorted(plain(t) for t in kg.types.get(sense, ())))))
            tb.text(".")
            tb.end(triple_id(sense, ONTOLEX_IS_LEXICALIZED_SENSE_OF, entity) for _, sense in syn)

    def _facts(self, tb: TextBuilder, entity: str, groups: list[Group]) -> None:
        k = len(tb.sentences) if not self.kg.is_synset(entity) else 1
        i = 0
        first_fact = True
        while i < len(groups):
            g = groups[i]
            nxt = groups[i + 1] if i + 1 < len(groups) else None
            same_subject = g.subject == entity
            # A pronoun only where the subject opens the sentence ("It was born in ...").
            full = first_fact or k % 3 == 0 or not same_subject or not g.template.sentence.startswith("{s}")
            subj = self.mention(g.subject) if full else self.referring(g.subject)
            objs = [self.mention(o) for o in g.objects]
            self._sep(tb, paragraph=first_fact and tb.pos > 0 and not self.kg.is_synset(entity))
            tb.begin()
            # Aggregation: two verb-phrase templates about the same subject share it.
            if (nxt is not None and nxt.subject == g.subject and g.template.is_verb_phrase
                    and nxt.template.is_verb_phrase and len(g.objects) + len(nxt.objects) <= 4):
                render(tb, g.template.sentence, subj, objs, final=False)
                tb.text(" and ")
                render(tb, nxt.template.sentence, subj, [self.mention(o) for o in nxt.objects],
                       skip_subject=True)
                tb.end(g.ids + nxt.ids)
                i += 2
            else:
                render(tb, g.template.sentence, subj, objs)
                tb.end(g.ids)
                i += 1
            k += 1
            first_fact = False

