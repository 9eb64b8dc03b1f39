"""DPO preference pairs: a true statement against a plausible false one, verified false in the graph.

Takes: entity plans, the planner and the :class:`~kgllm.corpus.kg.KG` of ALL input graphs.
Makes: rows ``{"id", "prompt", "chosen", "rejected", "triple_ids", "rejected_triple": [s, p, o], "entity"}``.

The rejected answer replaces the object of a true fact (s, p, o) by a candidate o' of the same kind:
an entity sharing o's most specific class, else another object of p elsewhere in the graph; for
literals, another value of p with the same datatype, else a perturbed number. A candidate is accepted
only if (s, p, o') is NOT in the graph (whatever other objects s has for p: multi-valued predicates are
checked against all of them) and it does not read the same as a true object. WordNet definitions get
pairs too (another synset's gloss). Facts with no verified-false candidate are counted, not faked.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator

from ..rdf import DBO, WN, WN_DEFINITION, iri, literal, parse_literal, triple_id
from .kg import ROLE_FACT
from .planner import EntityPlan, Planner, plain
from .render import render_literal

# Predicates whose facts imply their chains: a corrupted object must not be reachable through them.
TRANSITIVE = {iri(WN + n) for n in ("hypernym", "hyponym", "instance_hypernym", "holo_part", "mero_part",
                                     "holo_member", "mero_member", "holo_substance", "mero_substance")}
TRANSITIVE |= {iri(DBO + n) for n in ("isPartOf", "parentCompany", "subsidiary")}


def _id(*parts: str) -> str:
    return "dpo-" + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


class Corrupter:
    """Finds verified-false replacement objects."""

    def __init__(self, planner: Planner, seed: int = 0):
        self.planner = planner
        self.kg = planner.kg
        self.seed = seed
        self._kind_pools: dict[tuple, list[str]] | None = None
        self._type_members: dict[str, list[str]] | None = None
        self.no_candidate = 0

    def _pools(self) -> None:
        kg = self.kg
        pred: dict[str, set[str]] = defaultdict(set)
        for s, po in kg.out.items():
            for p, o in po:
                if p == WN_DEFINITION or kg.role(s, p, o) == ROLE_FACT:
                    pred[p].add(o)
        # Each predicate's objects by kind, in sorted order: IRIs under (p, "iri"), literals under
        # (p, language, datatype). Blank nodes are in no pool.
        pools: dict[tuple, list[str]] = defaultdict(list)
        for p, objs in pred.items():
            for x in sorted(objs):
                if x.startswith("<"):
                    pools[(p, "iri")].append(x)
                elif x.startswith('"'):
                    pools[(p, *parse_literal(x)[1:])].append(x)
        self._kind_pools = dict(pools)
        members: dict[str, list[str]] = defaultdict(list)
        for s in sorted(kg.types):
            t = kg.main_type(s)
            if t is not None:
                members[t].append(s)
        self._type_members = dict(members)

    def pool(self, p: str, o: str) -> list[str]:
        if self._kind_pools is None:
            self._pools()
        if o.startswith("<"):
            t = self.kg.main_type(o)
            if t is not None and len(self._type_members.get(t, ())) > 1:
                return self._type_members[t]
            key = (p, "iri")
        else:
            key = (p, *parse_literal(o)[1:])
        return self._kind_pools.get(key, [])

    def corrupt(self, s: str, p: str, o: str) -> str | None:
        """A replacement o' with (s, p, o') false in the graph, or None."""
        true_objs = set(self.kg.objects(s, p))
        true_surfaces = {self._surface(x).casefold() for x in true_objs}

        if p in TRANSITIVE:
            true_objs |= self._closure(s, p)  # "a toy dog is a kind of domestic animal" is true, if implied

        def ok(c: str) -> bool:
            return (c != s and c not in true_objs and not self.kg.has(s, p, c)
                    and self._surface(c).casefold() not in true_surfaces)

        pool = self.pool(p, o)
        rng = random.Random(_seed(str(self.seed), s, p, o))
        if pool:
            for _ in range(16):
                c = pool[rng.randrange(len(pool))]
                if ok(c):
                    return c
            start = rng.randrange(len(pool))
            for k in range(min(len(pool), 5000)):
                c = pool[(start + k) % len(pool)]
                if ok(c):
                    return c
        c = self._perturb(o, rng)
        if c is not None and ok(c):
            return c
        self.no_candidate += 1
        return None

    def _closure(self, s: str, p: str, depth: int = 8) -> set[str]:
        seen: set[str] = set()
        frontier = [s]
        for _ in range(depth):
            frontier = [o for x in frontier for o in self.kg.objects(x, p) if o not in seen]
            if not frontier:
                break
            seen.update(frontier)
        return seen

    def _surface(self, term: str) -> str:
        if term.startswith("<"):
            return self.kg.name(term)
        return render_literal(term, self.kg.language)

    @staticmethod
    def _perturb(o: str, rng: random.Random) -> str | None:
        if not o.startswith('"'):
            return None
        value, lang, dt = parse_literal(o)
        if lang is not None:
            return None
        try:
            x = float(value)
        except ValueError:
            return None
        factor = rng.choice((0.5, 0.75, 1.25, 1.5, 2.0))
        new = x * factor
        text = str(int(round(new))) if "." not in value and "E" not in value.upper() else repr(new)
        if text == value:
            text = str(int(x) + 1) if x == int(x) else repr(x + 1.0)
        return literal(text, datatype=dt)


def dpo_rows(planner: Planner, plans: dict[str, EntityPlan], *, per_group: int = 1, seed: int = 0,
             corrupter: Corrupter | None = None) -> Iterator[dict]:
    kg = planner.kg
    cor = corrupter or Corrupter(planner, seed)
    for entity in sorted(plans):
        plan = plans[entity]
        for g in plan.groups:
            name = kg.name(g.subject)
            prompt = g.template.questions[0].replace("{s}", name)
            prompt = prompt[:1].upper() + prompt[1:]
            for o in g.objects[:per_group]:
                bad = cor.corrupt(g.subject, g.predicate, o)
                if bad is None:
                    continue
                yield {"id": _id(g.subject, g.predicate, o, bad), "prompt": prompt,
                       "chosen": planner.fact_text(g.subject, g.predicate, [o]),
                       "rejected": planner.fact_text(g.subject, g.predicate, [bad]),
                       "triple_ids": [g.ids[g.objects.index(o)]], "rejected_triple": [g.subject, g.predicate, bad],
                       "entity": plain(entity)}
        if kg.is_synset(entity):
            yield from _definition_pairs(planner, cor, entity)


def _definition_pairs(planner: Planner, cor: Corrupter, synset: str) -> Iterator[dict]:
    kg = planner.kg
    p = WN_DEFINITION
    defs = sorted(kg.objects(synset, p))
    if not defs:
        return
    bad = cor.corrupt(synset, p, defs[0])
    if bad is None:
        return
    word = kg.name(synset)
    yield {"id": _id(synset, p, defs[0], bad), "prompt": f"What does '{word}' mean?",
           "chosen": f"{word[:1].upper() + word[1:]}: {parse_literal(defs[0])[0]}.",
           "rejected": f"{word[:1].upper() + word[1:]}: {parse_literal(bad)[0]}.",
           "triple_ids": [triple_id(synset, p, defs[0])], "rejected_triple": [synset, p, bad],
           "entity": plain(synset)}
