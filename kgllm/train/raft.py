"""``train.raft_data``: RAFT-style training examples for grounded answers, from index artifacts.

Takes: one or more index artifacts (``kgllm index``; several graphs give more entities that no evaluation set
is about, sampled together) and optionally question files to keep out (``exclude_questions``:
the evaluation sets, JSONL with ``question`` and optionally ``entity`` and ``triple_ids``).
Makes: a ``corpus.raft`` artifact that ``kgllm train sft --corpus DIR`` trains on::

    sft/{train,validation,test}.jsonl   id, prompt, completion (what train sft reads), question, type,
                                        entity, answerable, answers, support (triple ids), facts (triple ids
                                        in the order shown), cited ([n]), distractors

One example per generated question (kgllm.eval.question_sets: one-hop, two-hop, WordNet definition and
hypernym questions; and :func:`inverse_questions`, lists answered by subjects, "Which airline has Frankfurt
Airport as its hub airport?"; ``phrasings`` wordings per fact; none about the classes and properties of an
ontology loaded with the data, counted as ``schema_questions``): the prompt is :func:`kgllm.ask.grounding.build_prompt`
over numbered facts = the supporting triples + distractors (the question's own retrieved context, as
``kgllm ask`` retrieves it, minus the support and minus any triple holding an answer), in a seeded shuffled
order; the completion names each answer and cites the facts behind it (``Audi [2]``; a two-hop answer
cites both hops, the fact holding the answer first). A seeded share (``unanswerable``) of the examples
shows only distractors and has the completion "not in the graph" (Zhang et al. 2024, RAFT: training with
distractors and without the "oracle" document is what makes a model ignore unhelpful context and
refuse). A seeded share of the entities (``absent``) also gets a question about a relation the graph has
for no entity at all ("What is the wingspan of KLM?", :data:`ABSENT`; templates whose key word names a
predicate of the index are left out), shown the entity's retrieved triples and answered "not in the
graph". These templates differ from the unanswerable ones of :mod:`kgllm.eval.question_sets`.
Questions in people's own words (``questions``: JSONL of question, answers and a SELECT over one basic
graph pattern, as QALD-9 train's) are examples too (type ``asked``, :func:`asked_questions`): the triples
their query matches (run as :func:`construct_query`) with a gold answer at one end are their support.

Leak-free: questions about an entity of an excluded question (its ``entity``, or an entity whose label the
question names) or resting on one of its ``triple_ids`` are dropped; the rest are split by entity
(``validation``, ``test`` shares by a seeded hash), so no entity is in two splits. Every target is checked
with :func:`kgllm.ask.grounding.check_answer` before it is written (a target the check cannot verify is
dropped and counted). A question that a second index asks again (overlapping graphs) is counted as
``duplicate_questions``; ``max_examples`` samples in turn from each question type (:func:`sample`). Counts
add up: ``questions + absent_questions = examples + schema_questions + excluded_eval + duplicate_questions +
sampled_out + no_distractors + unverifiable``; ``examples = with_support + unanswerable`` (``unanswerable``
includes the ``unanswerable_absent`` ones); ``asked_read = asked_questions + asked_not_one_pattern +
asked_too_many_answers + asked_no_support``, the ``asked_questions`` being part of ``questions``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from .. import api
from ..artifacts import ArtifactWriter, Manifest, iter_jsonl, read_manifest, write_jsonl
from ..ask.answer import Answerer, store_from_index
from ..ask.grounding import NOT_IN_GRAPH, answer_text, build_prompt, check_answer, number_facts
from ..errors import InputError
from ..eval.metrics import normalize_answer
from ..eval.question_sets import SKIP, generate, predicate_noun
from ..index.lexicon import term_value
from ..log import logger, progress
from ..rdf import DBP, RDF_TYPE, RDFS_LABEL, SCHEMA_TYPES, WN, iri, triple_id
from .stage import RaftDataConfig

KIND = "corpus.raft"
SPLITS = ("train", "validation", "test")
# Relations nobody has in a typical graph: (question template, its key word). Not the templates of
# kgllm.eval.question_sets.UNANSWERABLE (the evaluated ones).
ABSENT = [("What is the wingspan of {s}?", "wingspan"), ("Which zodiac sign is {s}?", "zodiac"),
          ("What is the phone number of {s}?", "phone"), ("What is the blood type of {s}?", "blood"),
          ("What colour are the eyes of {s}?", "eye"), ("What is the atomic number of {s}?", "atomic"),
          ("Who is the best friend of {s}?", "friend"), ("What is the lucky number of {s}?", "lucky"),
          ("What is the pH value of {s}?", "ph"), ("What is the heart rate of {s}?", "heart")]
# Questions whose answers are subjects ("Which airline has Frankfurt Airport as its hub airport?"): a list
# from an object, the shape of most list, category and literal-lookup questions people ask.
INVERSE = ["Which {cls} has {o} as its {p}?", "What has the {p} {o}?", "Name every {cls} whose {p} is {o}.",
           "{o} is the {p} of which {cls}?"]
INVERSE_MAX = 4     # answers of an inverse question at most (its facts stay a short list)
ASKED = "asked"     # the type of a question read from a file (RaftDataConfig.questions): people's own words
ASKED_MAX = 6       # answers of such a question at most (a longer list is left out, counted)


def _h(*parts) -> float:
    """A seeded hash in [0, 1)."""
    d = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2 ** 64


def live_triples(index):
    g = index.graph
    for r in range(g.n_rows):
        if g.alive(r):
            yield g.triple_terms(r)


def _ngrams(text: str, n: int = 8) -> set[str]:
    w = normalize_answer(text).split()
    return {" ".join(w[i:j]) for i in range(len(w)) for j in range(i + 1, min(len(w), i + n) + 1)}


def read_excluded(files: list[Path]) -> tuple[set[str], set[str], set[str], int]:
    """Entity terms, triple ids and the word n-grams of the questions of ``files`` (their count last)."""
    ents, tids, grams, n = set(), set(), set(), 0
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise InputError(f"exclude_questions: {p} does not exist (give the question files evaluated later)")
        for line, r in iter_jsonl(p):
            if not isinstance(r.get("question"), str):
                raise InputError(f'{p}:{line}: expected {{"question": str, ...}}')
            n += 1
            grams |= _ngrams(r["question"])
            if isinstance(r.get("entity"), str) and r["entity"]:
                ents.add(r["entity"] if r["entity"].startswith("<") else iri(r["entity"]))
            tids |= {t for t in r.get("triple_ids") or [] if isinstance(t, str)}
    return ents, tids, grams, n


def _answer_end(q: dict, rec) -> str:
    """The term of a supporting triple that answers ``q``: its subject for an inverse question, else its object
    (a question read from a file: the end that is one of its answers)."""
    if q["type"] == ASKED:
        return rec.s if term_value(rec.s) in q["answers"] else rec.o
    return rec.s if q["type"] == "inverse" else rec.o


def read_asked(files: list[Path]) -> list[dict]:
    """The questions of ``files`` (JSONL: ``question``, ``answers``, ``query``), with where each was read."""
    out = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise InputError(f"questions: {p} does not exist (give a JSONL file of question, answers, query)")
        for line, r in iter_jsonl(p):
            q, a, query = r.get("question"), r.get("answers"), r.get("query")
            if not isinstance(q, str) or not q.strip() or not isinstance(a, list) or not isinstance(query, str):
                raise InputError(f'{p}:{line}: expected {{"question": str, "answers": [IRI or value, ...], '
                                 f'"query": "SELECT ... WHERE {{ ... }}"}}')
            out.append({"question": " ".join(q.split()), "answers": [str(x) for x in a], "query": query,
                        "where": f"{p.name}:{line}"})
    if not out:
        raise InputError(f"questions: {', '.join(map(str, files))}: no question in them")
    return out


_SELECT = re.compile(r"\bSELECT\b.*?\bWHERE\s*\{", re.I | re.S)
# What makes a query more than one basic graph pattern (or a pattern a CONSTRUCT template cannot copy).
_NOT_BGP = re.compile(r"\b(?:FILTER|OPTIONAL|UNION|MINUS|BIND|VALUES|SERVICE|GRAPH|SELECT)\b|[{}]", re.I)


def construct_query(query: str) -> str | None:
    """``query`` (a SELECT over one basic graph pattern) as ``CONSTRUCT WHERE``: the triples it matches. None
    for any other query (filters, optional or nested groups, subqueries). Solution modifiers after the
    pattern (ORDER BY, LIMIT) are dropped: the gold answers say which matches answer."""
    m = _SELECT.search(query)
    if m is None:
        return None
    end = query.rfind("}")
    body = query[m.end():end]
    if end < m.end() or _NOT_BGP.search(body) or not body.strip():
        return None
    return f"{query[:m.start()]}CONSTRUCT WHERE {{{body}}}"


def asked_questions(store, asked: list[dict], counts: dict) -> list[dict]:
    """The questions of ``asked`` that this index answers: each query run as :func:`construct_query` on
    ``store`` (the index's triples); its support the matched triples with a gold answer at one end and not
    at the other (an ``rdf:type`` constraint only where nothing else holds the answer), its ``entity`` the
    other end. ``asked`` loses the ones taken; the counts say why the others were not."""
    out, left = [], []
    for a in asked:
        cq = construct_query(a["query"])
        if cq is None:
            counts["asked_not_one_pattern"] += 1
            continue
        try:
            matched = [(str(t.subject), str(t.predicate), str(t.object)) for t in store.query(cq)]
        except (SyntaxError, OSError, ValueError) as e:   # pyoxigraph: SyntaxError for a query it cannot parse
            logger.debug("raft: %s: query not run: %s", a["where"], e)
            counts["asked_not_one_pattern"] += 1
            continue
        gold = set(a["answers"])
        # (answer end, other end) of each matched triple with a gold answer at exactly one end
        ends = {}
        for t in matched:
            s_gold, o_gold = term_value(t[0]) in gold, term_value(t[2]) in gold
            if s_gold != o_gold:
                ends[t] = (t[0], t[2]) if s_gold else (t[2], t[0])
        answered = {ans for t, (ans, _o) in ends.items() if t[1] != RDF_TYPE}
        support = [t for t, (ans, _o) in ends.items() if t[1] != RDF_TYPE or ans not in answered]
        answers = sorted({term_value(ends[t][0]) for t in support})
        if not support:
            left.append(a)
            continue
        if len(answers) > ASKED_MAX:
            counts["asked_too_many_answers"] += 1
            continue
        # What it is about: the other ends that are IRIs (a literal named in it: the answers themselves).
        others = {ends[t][1] for t in support if t[1] != RDF_TYPE} or {t[2] for t in support}
        ents = sorted(e for e in others if e.startswith("<")) or sorted(
            ends[t][0] for t in support if ends[t][0].startswith("<"))
        out.append({"question": a["question"], "answers": answers, "type": ASKED, "entity": ents[0][1:-1],
                    "entities": ents, "triple_ids": sorted({triple_id(*t) for t in support})})
    asked[:] = left
    return out


def _completion(q: dict, facts: list[dict], support: list) -> str:
    """The answer text citing the facts behind each answer (both hops of a two-hop answer)."""
    n_of = {c["id"]: c["n"] for c in facts}
    label_of = {c[k]: c["labels"][k] for c in facts for k in ("s", "o")}
    bridge = support[0] if q["type"] == "two_hop" else None
    parts = []
    for a in q["answers"]:
        finals = [rec for rec in support if rec is not bridge and term_value(_answer_end(q, rec)) == a]
        if not finals:
            continue
        # The fact holding the answer first: "Trollhättan [4]" is the end of its fact's line, then the hop.
        ns = [n_of[rec.id] for rec in finals] + ([n_of[bridge.id]] if bridge is not None else [])
        parts.append((label_of[_answer_end(q, finals[0])], ns))
    return answer_text(parts)


def inverse_questions(idx, phrasings: int, seed: int) -> list[dict]:
    """Questions from an object to the subjects that have it (:data:`INVERSE`): for each named object and
    predicate (not WordNet's, not the raw ``dbp:`` ones, not :data:`kgllm.eval.question_sets.SKIP`) with 1 to
    :data:`INVERSE_MAX` named subjects, ``phrasings`` seeded wordings; ``entity`` is the object (the question
    names it). The class is the subjects' shared ``rdf:type`` with the fewest members (the most specific),
    else "thing"."""
    subjects: dict[tuple[str, str], set[str]] = {}
    types: dict[str, set[str]] = {}
    for s, p, o in live_triples(idx):
        if p == RDF_TYPE:
            types.setdefault(s, set()).add(o)
        elif (o.startswith("<") and s.startswith("<") and p[1:-1] not in SKIP and not p.startswith(("<" + DBP,
                                                                                                      "<" + WN))):
            subjects.setdefault((o, p), set()).add(s)

    def named(t: str) -> bool:   # a name a question can use: a usable length, words (not "Q33506")
        lab = idx.label(t)
        return 2 < len(lab) < 60 and lab != t and sum(ch.isalpha() for ch in lab) >= 3

    members = Counter(c for ts in types.values() for c in ts)
    out = []
    for (o, p), subs in sorted(subjects.items()):
        subs = sorted(subs)
        if not (1 <= len(subs) <= INVERSE_MAX) or not named(o) or not all(named(x) for x in subs):
            continue
        shared = set.intersection(*(types.get(x, set()) for x in subs))
        cls = min(((members[c], idx.label(c)) for c in shared if named(c)), default=(0, "thing"))[1]
        noun = predicate_noun(p, idx.label)
        forms = sorted(INVERSE, key=lambda f: _h(seed, "inverse", o, p, f))[:phrasings]
        for f in forms:
            text = f.format(cls=cls.lower() if cls[:1].isupper() and cls[1:2].islower() else cls,
                            o=idx.label(o), p=noun)
            out.append({"question": text[0].upper() + text[1:], "answers": [term_value(x) for x in subs],
                        "type": "inverse", "entity": o[1:-1], "triple_ids": [triple_id(x, p, o) for x in subs]})
    return out


def build_examples(answerer: Answerer, cfg: RaftDataConfig, questions: list[dict], counts: dict) -> list[dict]:
    idx = answerer.index
    rows = []
    for q in progress(questions, desc="raft: retrieve distractors", unit="q"):
        qid = q["key"]
        support = idx.triples(q["triple_ids"])
        if len(support) != len(q["triple_ids"]):
            counts["unverifiable"] += 1  # a supporting triple is not live in the index
            continue
        answer_terms = {_answer_end(q, rec) for rec in support if term_value(_answer_end(q, rec)) in q["answers"]}
        absent = q["type"] == "absent"
        sup_ids = {rec.id for rec in support}
        out = answerer.ask(q["question"], cfg.retriever)
        pool = [rec for rec in idx.triples([c["id"] for c in out["context"]])
                if rec.id not in sup_ids and rec.p != RDFS_LABEL and rec.s not in answer_terms
                and rec.o not in answer_terms]
        lo = max(1, cfg.distractors - 2)
        k = lo + int(_h(cfg.seed, "k", qid) * (cfg.distractors - lo + 1))
        unanswerable = absent or _h(cfg.seed, "u", qid) < cfg.unanswerable
        chosen = pool[:k + 1] if unanswerable else pool[:k]
        if not chosen:
            counts["no_distractors"] += 1
            continue
        ids = [rec.id for rec in chosen] + ([] if unanswerable else [rec.id for rec in support])
        ids.sort(key=lambda t: _h(cfg.seed, "order", qid, t))
        facts = number_facts(idx, ids)
        if unanswerable:
            completion = NOT_IN_GRAPH  # (an absent-relation question has no support to remove)
        else:
            completion = _completion(q, facts, support)
            chk = check_answer(completion, facts, q["question"])
            if completion == NOT_IN_GRAPH or not chk.supported:
                counts["unverifiable"] += 1
                logger.debug("raft: %s: target %r fails the check: %s", qid, completion, chk.reason)
                continue
        cited = check_answer(completion, facts, q["question"]).cited
        rows.append({"id": f"raft-{qid}", "prompt": build_prompt(q["question"], facts), "completion": completion,
                     "question": q["question"], "type": q["type"], "entity": q["entity"],
                     "answerable": not unanswerable, "answers": [] if unanswerable else q["answers"],
                     "support": [] if unanswerable else sorted(sup_ids), "facts": [c["id"] for c in facts],
                     "cited": cited, "distractors": len(chosen), "split": q["split"]})
    return rows


def absent_questions(idx, kept: list[dict], cfg: RaftDataConfig) -> list[dict]:
    """One absent-relation question for a seeded ``cfg.absent`` share of the kept questions' entities (in
    their split), from the :data:`ABSENT` templates whose key word no predicate label of the index holds."""
    words = set()
    for p in {t[1] for t in live_triples(idx)}:
        words |= set(normalize_answer(idx.label(p)).split())
    forms = [f for f, key in ABSENT if not any(w.startswith(key) for w in words)]
    out = []
    for ent, split in sorted({(q["entity"], q["split"]) for q in kept}):
        if not forms or _h(cfg.seed, "absent", ent) >= cfg.absent:
            continue
        f = forms[int(_h(cfg.seed, "absent-form", ent) * len(forms))]
        text = f.format(s=idx.label(iri(ent)))
        out.append({"question": text, "answers": [], "type": "absent", "entity": ent, "triple_ids": [],
                    "split": split, "key": hashlib.blake2b(f"{ent}\x1f{text}".encode(), digest_size=6).hexdigest()})
    return out


def _schema_terms(idx) -> set[str]:
    """The terms typed as a class, property or ontology (:data:`SCHEMA_TYPES`), from the ``rdf:type`` rows alone."""
    g = idx.graph
    out = set()
    for r in g.rows_with_predicates([RDF_TYPE]).tolist():
        s, _p, o = g.triple_terms(r)
        if o in SCHEMA_TYPES:
            out.add(s)
    return out


def _kept_questions(idx, cfg: RaftDataConfig, schema: set[str], excluded: tuple, counts: dict,
                    excluded_entities: set) -> list[dict]:
    """The questions generated from one index that are about no evaluated entity or triple (with their split)
    and its absent-relation questions."""
    generated = [q for q in generate(live_triples(idx), holdout=1.0, phrasings=cfg.phrasings,
                                     max_per_type=10 ** 9, seed=cfg.seed) if q["type"] in cfg.types]
    if "inverse" in cfg.types:
        generated += inverse_questions(idx, cfg.phrasings, cfg.seed)
    counts["questions"] += len(generated)
    kept = _keep(idx, cfg, generated, schema, excluded, counts, excluded_entities)
    absent = absent_questions(idx, kept, cfg)
    counts["absent_questions"] += len(absent)
    return kept + absent


def _keep(idx, cfg: RaftDataConfig, questions: list[dict], schema: set[str], excluded: tuple, counts: dict,
          excluded_entities: set) -> list[dict]:
    """``questions`` less those about the schema (``schema``: :func:`_schema_terms`) or about an evaluated
    entity or triple, each with its key and its split (by entity)."""
    ex_ents, ex_tids, ex_grams = excluded
    kept = []
    for q in questions:
        ents = q.get("entities") or [iri(q["entity"])]
        if any(e in schema for e in ents) or any(iri(a) in schema for a in q["answers"] if "://" in a):
            counts["schema_questions"] += 1   # about a class or property of the ontology, not the data
            continue
        q["key"] = hashlib.blake2b(f"{q['entity']}\x1f{q['question']}".encode(), digest_size=6).hexdigest()
        named = [e for e in ents if e in ex_ents or normalize_answer(idx.label(e)) in ex_grams]
        if named or set(q["triple_ids"]) & ex_tids:
            counts["excluded_eval"] += 1
            excluded_entities.update(named or ents[:1])
            continue
        u = _h(cfg.seed, "split", q["entity"])
        q["split"] = "test" if u < cfg.test else "validation" if u < cfg.test + cfg.validation else "train"
        kept.append(q)
    return kept


def sample(questions: list[tuple[int, dict]], n: int, seed: int) -> list[tuple[int, dict]]:
    """A seeded sample of ``n`` questions (all when ``n`` is 0 or more than there are), taken in turn from each
    question type, so that a large graph's many one-hop questions do not crowd out the other shapes."""
    by_type: dict[str, list] = {}
    for iq in sorted(questions, key=lambda iq: _h(seed, "sample", iq[1]["key"])):
        by_type.setdefault(iq[1]["type"], []).append(iq)
    if n <= 0 or n >= len(questions):
        return [iq for t in sorted(by_type) for iq in by_type[t]]
    queues = [by_type[t][::-1] for t in sorted(by_type)]
    out = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


def run(inputs: list[Path], out: Path, config: RaftDataConfig, *, pipeline_key: str | None = None) -> Manifest:
    """Examples from every index of ``inputs`` (one graph, or several: a larger graph adds entities that no
    evaluation set is about), sampled together (:func:`sample`)."""
    cfg = config
    dirs = [Path(d) for d in inputs]
    for d in dirs:
        read_manifest(d, kind="index")
    ex_ents, ex_tids, ex_grams, n_ex = read_excluded(cfg.exclude_questions)
    counts = {"questions": 0, "schema_questions": 0, "excluded_eval": 0, "duplicate_questions": 0,
              "sampled_out": 0, "no_distractors": 0, "unverifiable": 0, "absent_questions": 0}
    asked = read_asked(cfg.questions) if cfg.questions else []
    if asked:
        counts.update(asked_read=len(asked), asked_questions=0, asked_not_one_pattern=0, asked_too_many_answers=0)
    answerers = [Answerer.from_dir(d, sparql=cfg.sparql) for d in dirs]
    excluded_entities: set[str] = set()
    kept, keys = [], set()
    for i, a in enumerate(answerers):
        schema = _schema_terms(a.index)
        qs = _kept_questions(a.index, cfg, schema, (ex_ents, ex_tids, ex_grams), counts, excluded_entities)
        if asked:   # each asked question once: from the first index whose triples answer it
            # the answerer's own embedded store (its distractors' retrieval uses it too), else one built here
            store = (a.sparql.local_store() if a.sparql is not None else None) or store_from_index(a.index)
            got = asked_questions(store, asked, counts)
            counts["questions"] += len(got)
            counts["asked_questions"] += len(got)
            qs += _keep(a.index, cfg, got, schema, (ex_ents, ex_tids, ex_grams), counts, excluded_entities)
        for q in qs:
            if q["key"] in keys:   # the same question from another index (graphs that overlap)
                counts["duplicate_questions"] += 1
                continue
            keys.add(q["key"])
            kept.append((i, q))
    if "asked_read" in counts:
        counts["asked_no_support"] = len(asked)   # in no index: its query matched no triple holding an answer
        logger.info("raft: %d of %d questions read are answered by the graph%s", counts["asked_questions"],
                    counts["asked_read"], "s" if len(dirs) > 1 else "")
    if not counts["questions"]:
        raise InputError(f"{', '.join(map(str, dirs))}: no questions of types {cfg.types} could be generated "
                         "from the index")
    picked = sample(kept, cfg.max_examples, cfg.seed)
    counts["sampled_out"] = len(kept) - len(picked)
    if not picked:
        raise InputError(f"{', '.join(map(str, dirs))}: every generated question is about an entity of "
                         f"exclude_questions ({counts['excluded_eval']}) or about the ontology's own classes and "
                         f"properties ({counts['schema_questions']}); nothing left to train on")
    rows = []
    for i, a in enumerate(answerers):
        mine = [q for j, q in picked if j == i]
        if mine:
            a.warmup([cfg.retriever])
            rows += build_examples(a, cfg, mine, counts)
    with ArtifactWriter(out, KIND, config=cfg, inputs=[*dirs, *cfg.exclude_questions, *cfg.questions],
                        pipeline_key=pipeline_key) as w:
        (w.path / "sft").mkdir()
        for split in SPLITS:
            part = sorted((r for r in rows if r["split"] == split), key=lambda r: r["id"])
            write_jsonl(w.path / "sft" / f"{split}.jsonl", part)
            w.counts[f"sft_{split}"] = len(part)
        w.counts.update(counts)
        w.counts.update(examples=len(rows), with_support=sum(r["answerable"] for r in rows),
                        unanswerable=sum(not r["answerable"] for r in rows),
                        unanswerable_absent=sum(r["type"] == "absent" for r in rows),
                        distractors=sum(r["distractors"] for r in rows), excluded_questions_read=n_ex,
                        excluded_entities=len(excluded_entities),
                        entities=len({r["entity"] for r in rows}))
        for t in sorted({r["type"] for r in rows}):
            w.counts[f"type_{t}"] = sum(r["type"] == t for r in rows)
    return w.manifest


# ``kgllm.train.raft(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_raft_data)
