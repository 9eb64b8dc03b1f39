"""SFT pairs from entity plans: one-hop, two-hop, definition and "list all" questions.

Takes: the :class:`~kgllm.corpus.planner.EntityPlan` of every entity and the planner (for names and
standalone fact sentences).
Makes: rows ``{"id", "prompt", "completion", "type", "triple_ids", "answers", "entity"}`` where
``answers`` holds the plain IRIs and names of IRI objects, or the lexical forms of literal objects,
and ``triple_ids`` the facts that support the completion.

- one_hop: ``phrasings`` different questions per (entity, predicate), answered with every object;
- two_hop: "What is the <p2> of the <p1> of X?" along X -p1-> M -p2-> Y where M has its own facts;
- definition: "What does the noun 'dog' mean?" for WordNet synsets;
- list: "List all <p> of X." for multi-valued predicates (2..max_list_objects objects).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from ..rdf import OWL, RDFS, WN_DEFINITION, WN_PART_OF_SPEECH, iri, parse_literal, triple_id
from .kg import POS_NAMES
from .planner import EntityPlan, Planner, plain

# Links that are not relations between things (a path through them makes a meaningless question).
NO_PATH_PREDICATES = {iri(OWL + "differentFrom"), iri(RDFS + "seeAlso")}


def _id(*parts: str) -> str:
    return "sft-" + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def answers(planner: Planner, objects: list[str]) -> list[str]:
    out: list[str] = []
    for o in objects:
        if o.startswith("<"):
            out += [plain(o), planner.kg.name(o)]
        else:
            out.append(parse_literal(o)[0])
    return list(dict.fromkeys(out))


def _rotate(items, k: int, n: int) -> list:
    """``n`` items starting at index ``k`` (mod len): varied phrasings across entities, deterministic."""
    return [items[(k + i) % len(items)] for i in range(min(n, len(items)))]


def _stable(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big")


def sft_rows(planner: Planner, plans: dict[str, EntityPlan], *, phrasings: int = 2, max_two_hop: int = 4,
             max_list_objects: int = 20) -> Iterator[dict]:
    kg = planner.kg
    for entity in sorted(plans):
        plan = plans[entity]
        ent = plain(entity)
        for g in plan.groups:
            name = kg.name(g.subject)
            completion = planner.fact_text(g.subject, g.predicate, g.objects)
            qs = _rotate(g.template.questions, _stable(g.subject + g.predicate), phrasings)
            for q in qs:
                prompt = _cap(q.replace("{s}", name))
                yield {"id": _id("one_hop", g.subject, g.predicate, q), "prompt": prompt, "completion": completion,
                       "type": "one_hop", "triple_ids": list(g.ids), "answers": answers(planner, g.objects),
                       "entity": ent}
            if 2 <= len(g.objects) <= max_list_objects:
                prompt = f"List all the {_plural(g.template.label)} of {name}."
                names = [planner.mention(o).surface for o in g.objects]
                yield {"id": _id("list", g.subject, g.predicate), "prompt": prompt,
                       "completion": _join(names) + ".", "type": "list", "triple_ids": list(g.ids),
                       "answers": answers(planner, g.objects), "entity": ent}
        yield from _two_hop(planner, plan, plans, max_two_hop)
        if kg.is_synset(entity):
            yield from _definition(planner, entity)


def _two_hop(planner: Planner, plan: EntityPlan, plans: dict[str, EntityPlan], limit: int) -> Iterator[dict]:
    kg = planner.kg
    n = 0
    for g1 in plan.groups:
        if (n >= limit or len(g1.objects) != 1 or g1.subject != plan.entity
                or g1.predicate in NO_PATH_PREDICATES):
            continue
        mid = g1.objects[0]
        mplan = plans.get(mid)
        if mid == plan.entity or mplan is None:
            continue
        for g2 in mplan.groups:
            if g2.subject != mid or plan.entity in g2.objects:
                continue  # skip paths that come straight back to the entity
            prompt = f"What is the {g2.template.label} of the {g1.template.label} of {kg.name(plan.entity)}?"
            completion = (planner.fact_text(plan.entity, g1.predicate, [mid]) + " "
                          + planner.fact_text(mid, g2.predicate, g2.objects))
            yield {"id": _id("two_hop", plan.entity, g1.predicate, g2.predicate), "prompt": prompt,
                   "completion": completion, "type": "two_hop", "triple_ids": g1.ids + g2.ids,
                   "answers": answers(planner, g2.objects), "entity": plain(plan.entity)}
            n += 1
            break


def _definition(planner: Planner, synset: str) -> Iterator[dict]:
    kg = planner.kg
    po = kg.out.get(synset, ())
    defs = sorted(o for p, o in po if p == WN_DEFINITION)
    if not defs:
        return
    pos = sorted(o for p, o in po if p == WN_PART_OF_SPEECH)
    pos_name = POS_NAMES.get(plain(pos[0]).rsplit("#", 1)[-1], "word") if pos else "word"
    word = kg.name(synset)
    gloss = "; ".join(parse_literal(d)[0] for d in defs)
    ids = [triple_id(synset, WN_DEFINITION, d) for d in defs]
    for k, q in enumerate((f"What does the {pos_name} '{word}' mean?", f"Define '{word}' ({pos_name}).")):
        yield {"id": _id("definition", synset, str(k)), "prompt": q,
               "completion": f"{_cap(word)} ({pos_name}): {gloss}.", "type": "definition", "triple_ids": ids,
               "answers": [parse_literal(d)[0] for d in defs], "entity": plain(synset)}


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _plural(label: str) -> str:
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es" if not label.endswith("s") else label
    if label.endswith("y") and label[-2:-1] not in "aeiou":
        return label[:-1] + "ies"
    return label + "s"

