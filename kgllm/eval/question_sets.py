"""Question sets generated from held-out facts of graph artifacts (``kgllm eval questions``; the questions
``kgllm eval qa`` asks). A single user question is parsed in kgllm.ask.question.

Takes: graph artifacts (DBpedia-style entities, WordNet in the project's vocabulary) and optionally a corpus
artifact, whose test-split entities are the held-out ones (facts the trained model never saw in training);
without a corpus, entities are held out by a hash of their IRI (``holdout`` of them, deterministic).
Makes: JSONL lines ``{"id", "question", "answers", "type", "entity", "triple_ids", "phrasing"}``:

* ``one_hop``: "What is the hub airport of British Airways?" (a curated phrasing of the predicate, from the
  corpus stage's lexicon, else "What is the <label> of <entity>?"), answers = all objects;
* ``two_hop``: "What is the city of the manufacturer of Saab 9000?", answers = the objects of the chain;
* ``definition`` and ``hypernym`` (WordNet): "What does puppy mean?", "What is a puppy a kind of?";
* ``unanswerable``: a relation the graph does not have ("What is the boiling point of KLM?"), answers = [].

Each fact gives up to ``phrasings`` questions with different wordings. ``triple_ids`` are the supporting
triples (gold citations). Answers are bare IRIs or literal lexical forms, as ``kgllm eval qa`` expects.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..artifacts import iter_jsonl, write_jsonl
from ..ask.phrasings import EXTRA, curated_phrasings
from ..errors import InputError
from ..index.lexicon import local_name, term_value
from ..rdf import DBO, DBP, FOAF, ONTOLEX, OWL, RDF, RDFS, RDFS_LABEL, WN, iri, triple_id

# Facts nobody asks about (bookkeeping, links, long texts, names).
SKIP = {RDF + "type", RDFS + "label", RDFS + "seeAlso", RDFS + "comment", OWL + "sameAs", OWL + "differentFrom",
        FOAF + "homepage", FOAF + "name", FOAF + "depiction", FOAF + "isPrimaryTopicOf", DBO + "abstract",
        DBO + "wikiPageID", DBO + "wikiPageRevisionID", DBO + "thumbnail", DBO + "wikiPageRedirects",
        DBO + "type", DBO + "iataAirlineCode", DBO + "icaoAirlineCode", DBO + "lounge",
        # OntoLex bookkeeping of WordNet entries and senses: structure, not facts anyone asks about.
        ONTOLEX + "canonicalForm", ONTOLEX + "sense", ONTOLEX + "isLexicalizedSenseOf", ONTOLEX + "writtenRep"}
# The answer of a definition/hypernym question is a WordNet term; their phrasings are WordNet's own.
WN_SHAPES = {WN + "definition": "definition", WN + "hypernym": "hypernym"}
_WN_DEFINITION = iri(WN + "definition")
_DBP_PREFIX = "<" + DBP
UNANSWERABLE = ["What is the boiling point of {s}?", "What is the shoe size of {s}?",
                "Who is the favourite poet of {s}?", "What is the melting point of {s}?"]
_TWO_HOP = ["What is the {p2} of the {p1} of {s}?", "Which {p2} does the {p1} of {s} have?",
            "Tell me the {p2} of {s}'s {p1}."]


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


def predicate_noun(pred: str, label_of) -> str:
    """The noun for a predicate in a generated question: the curated label, else the graph label."""
    phr = curated_phrasings().get(pred[1:-1])
    if phr and pred[1:-1] not in EXTRA:
        return phr[0]
    lab = label_of(pred)
    return lab if lab and lab != pred else local_name(pred)


def _one_hop_phrasings(pred: str, noun: str) -> list[str]:
    phr = [p for p in curated_phrasings().get(pred[1:-1], []) if "{s}" in p and p.rstrip().endswith("?")]
    return phr or [f"What is the {noun} of {{s}}?", f"What is {{s}}'s {noun}?"]


def generate(triples: Iterable[tuple[str, str, str]], *, holdout: float = 0.5, held_out: set[str] | None = None,
             phrasings: int = 2, max_per_type: int = 60, seed: int = 0) -> list[dict]:
    """Questions from ``triples`` (N-Triples terms). ``held_out``: entity IRI terms to ask about (else the
    ``holdout`` fraction by hash). Deterministic for the same inputs and ``seed``."""
    out_edges: dict[str, list[tuple[str, str]]] = defaultdict(list)
    labels: dict[str, str] = {}
    for s, p, o in triples:
        if p == RDFS_LABEL and (o.endswith('"@en') or o.endswith('"')) and s not in labels:
            labels[s] = term_value(o)
        out_edges[s].append((p, o))

    def label_of(t: str) -> str:
        return labels.get(t) or local_name(t)

    def keep(e: str) -> bool:
        if held_out is not None:
            return e in held_out
        return (_h(str(seed), e) % 10_000) / 10_000 < holdout

    def ans_terms(vals: list[str]) -> list[str]:
        en = [v for v in vals if not v.startswith('"') or '"@' not in v or v.endswith('"@en')]
        return en or vals

    def nice(t: str) -> bool:  # an entity a person could name in a question
        return t in labels and 2 < len(labels[t]) < 60

    by_type: dict[str, list[dict]] = defaultdict(list)
    wn_lemma_count: dict[str, int] = defaultdict(int)
    for s in out_edges:
        if nice(s) and any(p == _WN_DEFINITION for p, _ in out_edges[s]):
            wn_lemma_count[labels[s].lower()] += 1
    for s in sorted(out_edges):
        if not s.startswith("<") or not nice(s) or not keep(s):
            continue
        name = labels[s]
        preds: dict[str, list[str]] = defaultdict(list)
        for p, o in out_edges[s]:
            if p[1:-1] not in SKIP and not p.startswith(_DBP_PREFIX):
                preds[p].append(o)
        is_wn = any(p == _WN_DEFINITION for p in preds)
        if is_wn and wn_lemma_count[name.lower()] > 1:
            continue  # an ambiguous lemma: the question alone cannot say which sense
        for p in sorted(preds):
            vals = ans_terms(sorted(set(preds[p])))
            if len(vals) > 6:
                continue  # long lists make poor single questions
            qtype = WN_SHAPES.get(p[1:-1], "one_hop")
            if is_wn and qtype == "one_hop":
                continue
            if not is_wn and p[1:-1] not in curated_phrasings() and vals[0].startswith('"'):
                continue  # uncurated literal facts (codes, numbers) have no natural question
            forms = [f for f in EXTRA[p[1:-1]] if f[0].isupper() and f.endswith(("?", "."))] \
                if qtype != "one_hop" else _one_hop_phrasings(p, predicate_noun(p, label_of))
            forms = sorted(forms, key=lambda f: _h(str(seed), s, p, f))[:phrasings]
            tids = [triple_id(s, p, o) for o in vals]
            for i, f in enumerate(forms):
                by_type[qtype].append({"question": f.replace("{s}", name),
                                       "answers": [term_value(v) for v in vals], "type": qtype,
                                       "entity": s[1:-1], "triple_ids": tids, "phrasing": i})
        # Two hops: s -p1-> mid -p2-> o, mid a named entity, o not s.
        if not is_wn:
            for p1 in sorted(preds):
                mids = sorted({o for o in preds[p1] if o.startswith("<") and nice(o) and o in out_edges})
                if len(mids) != 1:
                    continue  # one intermediate entity keeps the question unambiguous
                mid = mids[0]
                p2s: dict[str, list[str]] = defaultdict(list)
                for p2, o2 in out_edges[mid]:
                    if p2[1:-1] not in SKIP and not p2.startswith(_DBP_PREFIX) and o2 != s and p2 != p1:
                        p2s[p2].append(o2)
                for p2 in sorted(p2s):
                    vals = ans_terms(sorted(set(p2s[p2])))
                    if len(vals) > 4 or (p2[1:-1] not in curated_phrasings() and vals[0].startswith('"')):
                        continue
                    n1, n2 = predicate_noun(p1, label_of), predicate_noun(p2, label_of)
                    forms = sorted(_TWO_HOP, key=lambda f: _h(str(seed), s, p1, p2, f))[:phrasings]
                    tids = [triple_id(s, p1, mid)] + [triple_id(mid, p2, o) for o in vals]
                    for i, f in enumerate(forms):
                        by_type["two_hop"].append({
                            "question": f.format(s=name, p1=n1, p2=n2), "answers": [term_value(v) for v in vals],
                            "type": "two_hop", "entity": s[1:-1], "triple_ids": tids, "phrasing": i})
        if not is_wn and _h(str(seed), "u", s) % 4 == 0:
            f = UNANSWERABLE[_h(str(seed), "uf", s) % len(UNANSWERABLE)]
            by_type["unanswerable"].append({"question": f.replace("{s}", name), "answers": [],
                                            "type": "unanswerable", "entity": s[1:-1], "triple_ids": [],
                                            "phrasing": 0})
    out = []
    for qtype in sorted(by_type):
        rows = sorted(by_type[qtype], key=lambda r: _h(str(seed), r["question"]))
        # Spread over entities: at most a few questions per entity and type before filling up.
        per_entity: dict[str, int] = defaultdict(int)
        picked = []
        for cap in (2, 4, 1_000_000):
            for r in rows:
                if len(picked) >= max_per_type:
                    break
                if r in picked or per_entity[r["entity"]] >= cap:
                    continue
                per_entity[r["entity"]] += 1
                picked.append(r)
        out += sorted(picked, key=lambda r: (r["entity"], r["question"]))
    for i, r in enumerate(out):
        r["id"] = f"q{i:04d}"
    return [{"id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in out]


def held_out_entities(corpus: str | Path, split: str = "test") -> set[str]:
    """Entity IRI terms of a corpus artifact's split (its SFT and pretraining documents)."""
    d = Path(corpus)
    ents: set[str] = set()
    found = False
    for part in ("sft", "pretrain"):
        p = d / part / f"{split}.jsonl"
        if not p.exists():
            continue
        found = True
        for _n, row in iter_jsonl(p):
            e = row.get("entity")
            if e:
                ents.add(e if e.startswith("<") else iri(e))
    if not found:
        raise InputError(f"{corpus}: no sft/{split}.jsonl or pretrain/{split}.jsonl; give a corpus artifact")
    return ents


def write_questions(rows: list[dict], out: str | Path) -> None:
    """The question file (JSONL, one question per line), written atomically."""
    write_jsonl(out, rows)
