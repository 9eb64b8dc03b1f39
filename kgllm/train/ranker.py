"""``train.ranker``: fine-tune the question/query ranker of ``kgllm ask`` on question/SPARQL pairs.

Takes: question/query pairs from LC-QuAD 1.0 (``lcquad``), QALD (``qald``) and the user's own JSONL files
(``questions``: ``{"question", "query"}`` per line), read in place, and a starting encoder (``base``: the
packaged MiniLM of the vector index by default).
Makes: a ``train.ranker`` artifact: the fine-tuned sentence-transformers model in ``model/`` (load it with
``kgllm.ask.ranker.Ranker.from_dir(OUT / "model")``, or ``kgllm ask --ranker OUT/model``) and counts in the
manifest (pairs by source and shape, skips by reason, negatives, training time, peak memory).

Each SPARQL query is parsed (rdflib's parser and algebra, prefixes honoured) to its basic graph pattern and
mapped onto the answerer's candidate shapes (:mod:`kgllm.ask.candidates`)::

    E p ?x                        lookup          "the p of it"
    ?x p E  (. ?x a C)            inverse         "C whose p is it"
    E p1 ?m . ?m p2 ?x            two_hop         (the four direction combinations)
    ?x p1 E1 . ?x p2 E2           intersection    (either direction, a literal allowed)
    ?x p "lit"                    literal
    ?x a C                        class           "all C"

``COUNT`` keeps the pattern; ``ASK { E1 p E2 }`` is the lookup from E1; ``ORDER BY ?v`` drops the one triple
that binds ``?v`` (the answerer applies superlatives itself). Anything else (FILTER, UNION, OPTIONAL, property
paths, three or more triples...) is skipped and counted by reason. The positive text is
:func:`kgllm.ask.candidates.describe` of the mapped shape; the anchor is the question with its entity and
literal mentions replaced by "it" (:func:`kgllm.ask.ranker.mask_question`), as the answerer masks them.
Hard negatives are near misses the candidate builder also produces: another predicate (a lexically close
one when there is one), a flipped direction, the class dropped or swapped, a two-hop cut to one hop, a one
hop extended to two. The loss is sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch and hard
negatives), with a batch sampler that keeps duplicate texts out of a batch (they would be false negatives).

Typical use (LC-QuAD's GPL data is read where it lies, never copied)::

    kgllm train ranker --lcquad ../shared/data/lcquad1/train-data.json.xz \\
        --qald ../shared/data/qald9-train/qald-9-train-multilingual.json.xz --out runs/ranker
    kgllm ask runs/index "Which films star Jesse Eisenberg?" --ranker runs/ranker/model

:func:`ranking_accuracy` compares encoders (zero-shot or trained) on pairs built the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import resource
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from urllib.parse import unquote

from .. import api
from ..artifacts import ArtifactWriter, Manifest, iter_jsonl
from ..ask.candidates import describe
from ..ask.ranker import mask_question
from ..errors import EmptyResultError, InputError
from ..index.lexicon import local_name
from ..index.vector import DEFAULT_MODEL, Encoder, model_dir
from ..log import logger, progress_enabled
from ..rdf import (
    COMPRESSIONS,
    RDF_TYPE,
    RDFS_LABEL,
    is_literal,
    iter_graph,
    lexical_form,
    literal,
    parse_literal,
)
from ..validate.ontology import parse_rdf_file
from .stage import RankerConfig

SHAPES = ("lookup", "inverse", "two_hop", "intersection", "literal", "class")


@dataclass(frozen=True)
class Record:
    """One question with its SPARQL query, as read from a source."""

    source: str      # lcquad | qald | the questions file's name
    id: str
    question: str
    query: str


@dataclass(frozen=True)
class Mapped:
    """A query mapped onto a candidate shape: what :func:`describe` needs, and the terms to mask."""

    shape: str
    preds: tuple[tuple[str, str], ...]   # (predicate term, "out"|"in") from the topic
    cls: str | None
    topics: tuple[str, ...]              # entity / literal terms the question mentions (masked)
    form: str                            # select | count | ask | order


@dataclass
class Pair:
    """A training (or evaluation) example: the masked question, its query's text and hard negatives."""

    source: str
    id: str
    question: str
    anchor: str
    positive: str
    negatives: list[str]
    shape: str
    form: str
    masked: int = 0       # topic terms found and masked in the question
    unmasked: int = 0     # topic terms not found (the question keeps them)


@dataclass
class PairSet:
    pairs: list[Pair]
    counts: dict = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)


class Skip(Exception):  # noqa: N818 - a reason to leave a query out, counted, not an error
    """A query that does not map onto a candidate shape; ``str(e)`` is the reason counted in the manifest."""


# ----------------------------------------------------------------------------- reading the sources


def _check_file(path: Path | str, key: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {key} file does not exist")
    if not p.is_file():
        raise InputError(f"{p}: {key} is not a file; give the JSON file itself")
    return p


def _load_json(path: Path, key: str):
    comp = path.suffix.lower() if path.suffix.lower() in COMPRESSIONS else None
    try:
        with (COMPRESSIONS[comp](path, "rb") if comp else open(path, "rb")) as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: cannot read the {key} file as JSON ({e})") from e


def read_lcquad(path: Path | str) -> list[Record]:
    """LC-QuAD 1.0 (``[{_id, corrected_question, sparql_query, ...}]``)."""
    p = _check_file(path, "lcquad")
    data = _load_json(p, "lcquad")
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a JSON list of LC-QuAD records")
    out = []
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "sparql_query" not in r:
            raise InputError(f"{p}: record {i} has no sparql_query; is this an LC-QuAD 1.0 file?")
        q = r.get("corrected_question") or r.get("question") or r.get("intermediary_question") or ""
        out.append(Record("lcquad", str(r.get("_id", i)), str(q), str(r["sparql_query"])))
    return out


def read_qald(path: Path | str) -> list[Record]:
    """QALD JSON (``{"questions": [{id, question: [{language, string}], query: {sparql}}]}``), English."""
    p = _check_file(path, "qald")
    data = _load_json(p, "qald")
    qs = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(qs, list):
        raise InputError(f"{p}: expected QALD JSON with a 'questions' list")
    out = []
    for i, r in enumerate(qs):
        texts = [x.get("string", "") for x in r.get("question", []) if x.get("language") == "en"]
        query = (r.get("query") or {}).get("sparql", "") if isinstance(r.get("query"), dict) else ""
        out.append(Record("qald", str(r.get("id", i)), (texts[0] if texts else "").strip(), query or ""))
    return out


def read_questions(path: Path | str) -> list[Record]:
    """The user's JSONL: ``{"question", "query"}`` per line (``id`` optional: the line number)."""
    p = _check_file(path, "questions")
    out = []
    for n, obj in iter_jsonl(p, " (expected {\"question\": ..., \"query\": ...} per line)"):
        if not isinstance(obj.get("question"), str) or not isinstance(obj.get("query"), str):
            raise InputError(f"{p}:{n}: a line needs string fields 'question' and 'query'")
        out.append(Record(p.name, str(obj.get("id", n)), obj["question"], obj["query"]))
    return out


def fold_of(question_id: str, folds: int) -> int:
    """The fold (0 .. folds-1) of a question id: a hash, so folds do not depend on the file's order."""
    return int(hashlib.sha256(str(question_id).encode("utf-8")).hexdigest(), 16) % folds


# ----------------------------------------------------------------------------- SPARQL -> shape

_COUNT_NO_ALIAS = re.compile(r"(SELECT\s+(?:DISTINCT\s+|REDUCED\s+)?)COUNT\s*\(\s*(DISTINCT\s+)?(\?\w+|\*)\s*\)",
                             re.IGNORECASE)
_PASS = {"SelectQuery", "AskQuery", "Project", "Distinct", "Reduced", "Slice"}
_REASONS = {"Filter": "filter", "LeftJoin": "optional", "Union": "union", "Minus": "minus", "Graph": "graph",
            "ToMultiSet": "subquery_or_values", "values": "values", "ConstructQuery": "construct",
            "DescribeQuery": "describe"}


def _normalize(sparql: str) -> str:
    # LC-QuAD writes Virtuoso's `SELECT DISTINCT COUNT(?uri) WHERE`, which SPARQL 1.1 spells with an alias.
    return _COUNT_NO_ALIAS.sub(lambda m: f"{m.group(1)}(COUNT({m.group(2) or ''}{m.group(3)}) AS ?_count)", sparql)


def _term(t) -> str:
    from rdflib import BNode, Literal, URIRef, Variable

    if isinstance(t, Variable):
        return f"?{t}"
    if isinstance(t, BNode):
        return f"?_b{t}"
    if isinstance(t, URIRef):
        return f"<{t}>"
    if isinstance(t, Literal):
        return literal(str(t), t.language, str(t.datatype) if t.datatype else None)
    raise Skip("property_path")


def _algebra(sparql: str):
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        return translateQuery(parseQuery(_normalize(sparql))).algebra
    except Exception as e:  # pyparsing and rdflib raise many kinds; the query is skipped and counted
        raise Skip("parse_error") from e


def map_query(sparql: str) -> Mapped:
    """The candidate shape of a SPARQL query, or :class:`Skip` with the reason it has none."""
    if not sparql.strip():
        raise Skip("no_query")
    alg = _algebra(sparql)
    info = {"triples": [], "pv": [], "count": None, "order": [], "ask": alg.name == "AskQuery"}

    def walk(node) -> None:
        name = getattr(node, "name", None)
        if name == "BGP":
            info["triples"].extend(node.triples)
            return
        if name in _REASONS:
            raise Skip(_REASONS[name])
        if name == "Project":
            info["pv"] = list(node.PV)
        elif name == "OrderBy":
            for c in node.expr:
                info["order"].append(getattr(c, "expr", c))
        elif name == "Extend":
            if not str(node.expr).startswith("__agg_"):
                raise Skip("bind")
        elif name == "AggregateJoin":
            for a in node.A:
                if a.name == "Aggregate_Count":
                    info["count"] = a.vars
                elif a.name != "Aggregate_Sample":
                    raise Skip(f"aggregate_{a.name.split('_', 1)[1].lower()}")
        elif name == "Group":
            if node.expr:
                raise Skip("group_by")
        elif name == "Join":
            walk(node.p1)
            walk(node.p2)
            return
        elif name not in _PASS:
            raise Skip((name or "unknown").lower())
        if "p" in node and node.p is not None:
            walk(node.p)

    walk(alg)
    triples = [tuple(_term(x) for x in tr) for tr in info["triples"]]
    if any(p.startswith("?") for _s, p, _o in triples):
        raise Skip("variable_predicate")
    form = "ask" if info["ask"] else "select"
    if info["count"] is not None:
        form = "count"
        if str(info["count"]) == "*":
            bgp_vars = sorted({t for tr in triples for t in tr if t.startswith("?")})
            if len(bgp_vars) != 1:
                raise Skip("count_star")
            answer = bgp_vars[0]
        else:
            answer = f"?{info['count']}"
    elif info["ask"]:
        answer = None
    else:
        bgp_vars = {t for tr in triples for t in tr if t.startswith("?")}
        projected = [f"?{v}" for v in info["pv"] if f"?{v}" in bgp_vars]
        if len(projected) != 1:
            raise Skip("no_projected_variable" if not projected else "several_projected_variables")
        answer = projected[0]
    if info["order"]:
        triples, form = _drop_order(triples, info["order"], answer), "order" if form == "select" else form
    return _shape(triples, answer, form)


def _drop_order(triples, order, answer):
    """``?x p ?v ... ORDER BY ?v``: the triple binding the ordering value goes; the superlative is the
    answerer's business, the pattern left is the candidate."""
    for expr in order:
        v = f"?{expr}" if type(expr).__name__ == "Variable" else None
        if v is None:
            raise Skip("order_by_expression")
        if v == answer:
            continue
        using = [tr for tr in triples if v in tr]
        if len(using) != 1 or using[0][2] != v:
            raise Skip("order_by_pattern")
        triples = [tr for tr in triples if tr is not using[0]]
    return triples


def _shape(triples, answer: str | None, form: str) -> Mapped:
    types = [tr for tr in triples if tr[1] == RDF_TYPE]
    rels = [tr for tr in triples if tr[1] != RDF_TYPE]
    classes: dict[str, list[str]] = defaultdict(list)
    for s, _p, o in types:
        if not s.startswith("?") or not o.startswith("<"):
            raise Skip("type_check")
        classes[s].append(o)
    if any(len(v) > 1 for v in classes.values()):
        raise Skip("several_classes")
    cls = classes[answer][0] if answer in classes else None

    def const(t: str) -> bool:
        return not t.startswith("?")

    if answer is None:  # ASK { E1 p E2 }: "the p of E1" is E2
        if len(rels) == 1 and not types and const(rels[0][0]) and const(rels[0][2]):
            s, p, o = rels[0]
            return Mapped("lookup", ((p, "out"),), None, (s, o), form)
        raise Skip("ask_other")
    if not rels:
        if len(types) == 1 and cls:
            return Mapped("class", (), cls, (), form)
        raise Skip("no_pattern")
    if len(rels) == 1:
        s, p, o = rels[0]
        if s == answer and const(o):
            if is_literal(o):
                return Mapped("literal", ((p, "in"),), cls, (o,), form)
            return Mapped("inverse", ((p, "in"),), cls, (o,), form)
        if o == answer and const(s):
            return Mapped("lookup", ((p, "out"),), cls, (s,), form)
        raise Skip("pattern_other")
    if len(rels) == 2:
        hops = []
        for s, p, o in rels:
            if s == answer and const(o):
                hops.append((o, (p, "in")))
            elif o == answer and const(s) and not is_literal(s):
                hops.append((s, (p, "out")))
        if len(hops) == 2:
            if hops[0][0] == hops[1][0]:
                raise Skip("intersection_same_entity")
            return Mapped("intersection", (hops[0][1], hops[1][1]), cls, (hops[0][0], hops[1][0]), form)
        # A chain topic -p1- ?m -p2- answer.
        mids = {t for tr in rels for t in (tr[0], tr[2]) if t.startswith("?") and t != answer}
        if len(mids) == 1:
            m = mids.pop()
            first = [tr for tr in rels if m in (tr[0], tr[2]) and answer not in (tr[0], tr[2])]
            second = [tr for tr in rels if m in (tr[0], tr[2]) and answer in (tr[0], tr[2])]
            if len(first) == 1 and len(second) == 1:
                (s1, p1, o1), (s2, p2, o2) = first[0], second[0]
                if s1 != m and o1 == m and const(s1) and not is_literal(s1):
                    topic, d1 = s1, "out"
                elif s1 == m and const(o1):
                    topic, d1 = o1, "in"
                else:
                    raise Skip("pattern_other")
                d2 = "out" if (s2, o2) == (m, answer) else "in"
                # No class: the candidate builder makes two-hop candidates without one, and a positive text
                # the answerer never shows would teach the ranker to favour classes it cannot see there.
                return Mapped("two_hop", ((p1, d1), (p2, d2)), None, (topic,), form)
        raise Skip("pattern_other")
    raise Skip("three_or_more_triples")


# ----------------------------------------------------------------------------- labels and masking


class Labels:
    """term -> label: an English rdfs:label from the ontology when there is one, else the IRI's local name."""

    def __init__(self, ontology: Path | str | None = None):
        self.labels: dict[str, str] = {}
        if ontology is None:
            return
        path = Path(ontology)
        if path.is_dir():
            triples: Iterable = iter_graph(path)
        elif path.exists():
            triples = parse_rdf_file(path)
        else:
            raise InputError(f"{path}: ontology file or graph artifact does not exist")
        rank: dict[str, int] = {}
        for s, p, o in triples:
            if p != RDFS_LABEL or not is_literal(o):
                continue
            value, lang, _dt = parse_literal(o)
            r = 0 if lang == "en" else 1 if not lang else 2 if lang.startswith("en") else 9
            if r < 9 and r < rank.get(s, 10):
                rank[s], self.labels[s] = r, value

    def __call__(self, term: str) -> str:
        return self.labels.get(term) or local_name(term)


def name_variants(term: str) -> list[str]:
    """How a question may name an entity or literal: the IRI's local name with spaces, without a trailing
    "(...)" qualifier, without a ", ..." one; a literal's lexical form."""
    if is_literal(term):
        v = lexical_form(term).strip()
        return [v] if v else []
    v = term[1:-1] if term.startswith("<") else term
    name = unquote(re.split(r"[/#]", v.rstrip("/#"))[-1]).replace("_", " ").strip()
    out = [name]
    bare = re.sub(r"\s*\([^)]*\)\s*$", "", name).strip()
    if bare and bare not in out:
        out.append(bare)
    head = bare.split(",")[0].strip()
    if head and head not in out:
        out.append(head)
    return [x for x in out if x]


_WORD = re.compile(r"[\w][\w'.&-]*")


def find_span(text: str, term: str, fuzzy: float = 0.85) -> tuple[int, int] | None:
    """Where ``text`` names ``term``: each name variant case-insensitively at word boundaries, else (for
    names of 4+ characters) the word window most like it (difflib ratio >= ``fuzzy``: typos, "Grevais")."""
    variants = name_variants(term)
    for v in variants:
        pat = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in v.split()) + r"(?!\w)"
        m = re.search(pat, text, re.IGNORECASE)
        if m:
            return m.start(), m.end()
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    best, best_span = 0.0, None
    for v in variants:
        if len(v) < 4:
            continue
        k = len(v.split())
        low = v.lower()
        for n in {max(1, k - 1), k, k + 1}:
            for i in range(len(words) - n + 1):
                a, b = words[i][0], words[i + n - 1][1]
                r = SequenceMatcher(None, text[a:b].lower(), low).ratio()
                if r > best:
                    best, best_span = r, (a, b)
    return best_span if best >= fuzzy else None


def mask(question: str, terms: Iterable[str]) -> tuple[str, dict[str, tuple[int, int] | None]]:
    """The question with every term it names replaced by "it" (:func:`kgllm.ask.ranker.mask_question`),
    and the span found per term (None: not found, the question keeps it)."""
    spans = {t: find_span(question, t) for t in terms}
    return mask_question(question, [s for s in spans.values() if s]), spans


# ----------------------------------------------------------------------------- negatives


class Vocabulary:
    """Predicates and classes seen in the data, for negatives (lexically close ones first)."""

    def __init__(self, mapped: Iterable[Mapped], label: Callable[[str], str]):
        preds, classes = set(), set()
        for m in mapped:
            preds.update(p for p, _d in m.preds)
            if m.cls:
                classes.add(m.cls)
        self.preds, self.classes = sorted(preds), sorted(classes)
        self._by_word: dict[str, list[str]] = defaultdict(list)
        self._words: dict[str, set[str]] = {}
        for p in self.preds:
            ws = {w for w in re.findall(r"[a-z]+", label(p).lower()) if len(w) >= 3}
            self._words[p] = ws
            for w in sorted(ws):
                self._by_word[w].append(p)

    def other_preds(self, p: str, rng: random.Random, k: int = 2) -> list[str]:
        """Up to ``k`` predicates other than ``p``: one sharing a word of its label when there is one."""
        out: list[str] = []
        close = sorted({q for w in self._words.get(p, ()) for q in self._by_word[w]} - {p})
        if close:
            out.append(rng.choice(close))
        tries = 0
        while len(out) < k and len(self.preds) > 1 and tries < 20:
            q = rng.choice(self.preds)
            tries += 1
            if q != p and q not in out:
                out.append(q)
        return out

    def other_classes(self, c: str | None, rng: random.Random, k: int = 2) -> list[str]:
        pool = [x for x in self.classes if x != c]
        return rng.sample(pool, min(k, len(pool)))


def _text(shape: str, preds, label, cls) -> str:
    if shape in ("lookup", "inverse"):
        shape = "lookup" if preds[0][1] == "out" else "inverse"
    return describe(shape, list(preds), label, cls=cls)


def _flip(d: str) -> str:
    return "in" if d == "out" else "out"


def negative_texts(m: Mapped, label, vocab: Vocabulary, rng: random.Random, n: int) -> list[str]:
    """``n`` texts of near-miss candidates of the same question, never the positive text (fewer when too few
    exist: a vocabulary of one predicate and one class)."""
    pos = _text(m.shape, m.preds, label, m.cls)
    groups: dict[str, list[tuple]] = defaultdict(list)  # kind -> [(shape, preds, cls)]
    sh, ps, c = m.shape, list(m.preds), m.cls
    if sh == "class":
        for c2 in vocab.other_classes(c, rng, 3):
            groups["class"].append(("class", (), c2))
    else:
        for i, (p, d) in enumerate(ps):
            for q in vocab.other_preds(p, rng):
                groups["predicate"].append((sh, tuple(ps[:i] + [(q, d)] + ps[i + 1:]), c))
            if sh == "literal":
                groups["direction"].append(("lookup", ((p, "out"),), c))
            else:
                groups["direction"].append((sh, tuple(ps[:i] + [(p, _flip(d))] + ps[i + 1:]), c))
        if c:
            groups["class"].append((sh, tuple(ps), None))
            for c2 in vocab.other_classes(c, rng, 1):
                groups["class"].append((sh, tuple(ps), c2))
        if sh == "two_hop":
            groups["hops"] += [("lookup", (ps[0],), c), ("lookup", (ps[1],), c)]
        elif sh == "intersection":
            groups["hops"] += [("lookup", (ps[0],), c), ("lookup", (ps[1],), c)]
        elif sh in ("lookup", "inverse"):
            for q in vocab.other_preds(ps[0][0], rng, 1) or [ps[0][0]]:
                groups["hops"].append(("two_hop", (ps[0], (q, rng.choice(("out", "in")))), c))
    queues = []
    for kind in sorted(groups):
        texts = list(dict.fromkeys(_text(s, p, label, cc) for s, p, cc in groups[kind]))
        rng.shuffle(texts)
        queues.append(texts)
    out: list[str] = []
    while len(out) < n and any(queues):
        for q in queues:
            while q:
                t = q.pop(0)
                if t != pos and t not in out:
                    out.append(t)
                    break
            if len(out) >= n:
                break
    return out


# ----------------------------------------------------------------------------- pairs


def _records(cfg: RankerConfig) -> tuple[list[Record], list[Path], Counter]:
    """Every record of the configured sources, the files read, and the QALD questions held out."""
    if not (cfg.lcquad or cfg.qald or cfg.questions):
        raise InputError("train.ranker: no training data given; set lcquad, qald or questions "
                         "(--lcquad FILE, --qald FILE, --questions FILE)")
    recs: list[Record] = []
    files: list[Path] = []
    held = Counter()
    if cfg.lcquad:
        recs += read_lcquad(cfg.lcquad)
        files.append(Path(cfg.lcquad))
    if cfg.qald:
        exclude = {str(x) for x in cfg.exclude_ids}
        for r in read_qald(cfg.qald):
            if r.id in exclude or (cfg.folds and fold_of(r.id, cfg.folds) == cfg.fold):
                held[r.source] += 1
                continue
            recs.append(r)
        files.append(Path(cfg.qald))
    for q in cfg.questions:
        recs += read_questions(q)
        files.append(Path(q))
    return recs, files, held


def build_pairs(cfg: RankerConfig, label: Labels | None = None) -> PairSet:
    """Pairs from the sources of ``cfg`` (masked question, positive text, ``cfg.negatives`` hard negatives),
    with counts: records read, pairs by source and shape, skips by reason, held-out and sampled-away records.
    Every record read is counted once: ``records == pairs + skipped + held_out + over_max_pairs``."""
    label = label or Labels(cfg.ontology)
    recs, files, held = _records(cfg)
    skipped: Counter = Counter()
    mapped: list[tuple[Record, Mapped]] = []
    for r in recs:
        if not r.question.strip():
            skipped["no_question"] += 1
            continue
        try:
            mapped.append((r, map_query(r.query)))
        except Skip as e:
            skipped[str(e)] += 1
    vocab = Vocabulary((m for _r, m in mapped), label)
    pairs: list[Pair] = []
    for r, m in mapped:
        rng = random.Random(f"{cfg.seed}:{r.source}:{r.id}")
        anchor, spans = mask(r.question, m.topics)
        if m.shape == "intersection":  # the builder pairs mentions in question order
            order = [spans[t][0] if spans[t] else 1 << 30 for t in m.topics]
            if order[1] < order[0]:
                m = Mapped(m.shape, m.preds[::-1], m.cls, m.topics[::-1], m.form)
        positive = _text(m.shape, m.preds, label, m.cls)
        negs = negative_texts(m, label, vocab, rng, cfg.negatives)
        if len(negs) < cfg.negatives:
            if not negs:
                skipped["no_negative"] += 1
                continue
            negs = [negs[i % len(negs)] for i in range(cfg.negatives)]  # a fixed column count for the loss
        found = sum(1 for s in spans.values() if s)
        pairs.append(Pair(r.source, r.id, r.question, anchor, positive, negs, m.shape, m.form,
                          found, len(spans) - found))
    over = 0
    if cfg.max_pairs and len(pairs) > cfg.max_pairs:
        keep = set(random.Random(cfg.seed).sample(range(len(pairs)), cfg.max_pairs))
        over = len(pairs) - cfg.max_pairs
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    counts = {
        "records": len(recs) + sum(held.values()),
        "pairs": len(pairs),
        "pairs_by_source": dict(sorted(Counter(p.source for p in pairs).items())),
        "pairs_by_shape": dict(sorted(Counter(p.shape for p in pairs).items())),
        "pairs_by_form": dict(sorted(Counter(p.form for p in pairs).items())),
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "held_out": sum(held.values()),
        "over_max_pairs": over,
        "negatives": sum(len(set(p.negatives)) for p in pairs),
        "entities_masked": sum(p.masked for p in pairs),
        "entities_unmasked": sum(p.unmasked for p in pairs),
        "predicates": len(vocab.preds),
        "classes": len(vocab.classes),
    }
    if cfg.ontology:
        files.append(Path(cfg.ontology))
    return PairSet(pairs, counts, files)


# ----------------------------------------------------------------------------- training


def resolve_base(base: str) -> Path:
    """The sentence-transformers directory to start from: the packaged encoder, a model directory, or a
    ``train.ranker`` artifact (its ``model/``)."""
    if base == DEFAULT_MODEL:
        return model_dir()
    p = Path(base)
    for d in (p / "model", p):
        if (d / "modules.json").is_file():
            return d
    raise InputError(f"base {base!r}: give {DEFAULT_MODEL!r}, a sentence-transformers model directory "
                     "(with modules.json) or a train.ranker artifact")


def _st_imports():
    """sentence-transformers v3+ training classes (v6 moved them under ``sentence_transformer``)."""
    try:
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # v3 - v5
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    return (SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
            MultipleNegativesRankingLoss, BatchSamplers)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def train_encoder(pairs: list[Pair], base: Path, cfg: RankerConfig, save_to: Path) -> dict:
    """Fine-tune the encoder at ``base`` on ``pairs`` with MultipleNegativesRankingLoss; save it to
    ``save_to``. Returns the training figures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    ST, Trainer, Args, MNRL, BatchSamplers = _st_imports()
    if not progress_enabled():
        disable_progress_bar()
    gpu = cfg.device == "auto" and torch.cuda.is_available()
    model = ST(str(base), device="cuda" if gpu else "cpu")
    cols: dict[str, list[str]] = {"anchor": [p.anchor for p in pairs], "positive": [p.positive for p in pairs]}
    for i in range(cfg.negatives):
        cols[f"negative_{i + 1}"] = [p.negatives[i] for p in pairs]
    data = Dataset.from_dict(cols)

    class _Trainer(Trainer):
        def add_model_card_callback(self, *args, **kwargs):
            """No model card: it is not saved (``create_model_card=False``), and building it samples the
            training data and draws a progress bar of its own."""

    steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(len(pairs) / cfg.batch_size * cfg.epochs)
    work = Path(tempfile.mkdtemp(prefix="kgllm-ranker-"))
    try:
        args = Args(output_dir=str(work), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
                    per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.lr,
                    warmup_steps=int(cfg.warmup_ratio * steps),  # an int: warmup_ratio is deprecated in v5
                    seed=cfg.seed, data_seed=cfg.seed, use_cpu=not gpu, bf16=False, fp16=False,
                    save_strategy="no", report_to="none", logging_steps=50, disable_tqdm=not progress_enabled(),
                    dataloader_num_workers=0, batch_sampler=BatchSamplers.NO_DUPLICATES)
        trainer = _Trainer(model=model, args=args, train_dataset=data, loss=MNRL(model))
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
        model.save(str(save_to), create_model_card=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"train_seconds": round(seconds, 2), "steps": trainer.state.global_step,
            "train_loss": float(result.training_loss), "device": "cuda" if gpu else "cpu"}


def run(inputs: list[Path], out: Path, config: RankerConfig, *, pipeline_key: str | None = None) -> Manifest:
    cfg = config
    base = resolve_base(cfg.base)  # before any work: a bad base is a usage error
    ps = build_pairs(cfg)
    c = ps.counts
    logger.info("train.ranker: %d pairs (%s); skipped %d (%s)", c["pairs"],
                ", ".join(f"{k} {v}" for k, v in c["pairs_by_shape"].items()), c["skipped"],
                ", ".join(f"{k} {v}" for k, v in c["skipped_by_reason"].items()) or "none")
    if not ps.pairs:
        raise EmptyResultError(f"train.ranker: no usable question/query pairs among {c['records']} records "
                               f"(skipped: {c['skipped_by_reason'] or 'none'}); give queries of the shapes "
                               f"{', '.join(SHAPES)}")
    with ArtifactWriter(out, "train.ranker", config=cfg, inputs=ps.inputs, pipeline_key=pipeline_key) as w:
        figures = train_encoder(ps.pairs, base, cfg, w.path / "model")
        w.counts.update(c)
        w.counts.update({"steps": figures["steps"], "train_seconds": figures["train_seconds"],
                         "peak_rss_mb": _peak_rss_mb()})
        w.extra.update({"base": str(base), "train_loss": figures["train_loss"], "device": figures["device"],
                        "loss": "MultipleNegativesRankingLoss", "model_dir": "model"})
    return w.manifest


# ----------------------------------------------------------------------------- evaluation


def _scores(model: Path | str | None, pairs: list[Pair]):
    import numpy as np

    enc = Encoder(str(model) if model is not None else DEFAULT_MODEL, batch_size=128)
    anchors = sorted({p.anchor for p in pairs})
    texts = sorted({t for p in pairs for t in [p.positive, *p.negatives]})
    av = dict(zip(anchors, enc.encode(anchors), strict=True))
    tv = dict(zip(texts, enc.encode(texts), strict=True))
    out = []
    for p in pairs:
        q = av[p.anchor]
        pos = float(np.dot(tv[p.positive], q))
        out.append(all(pos > float(np.dot(tv[n], q)) for n in p.negatives))
    return out


def _model_path(model: Path | str | None) -> Path | str | None:
    if model is None:
        return None
    p = Path(model)
    return p / "model" if (p / "model" / "modules.json").is_file() else p


def ranking_accuracy(model: Path | str | None, pairs: Iterable[Pair]) -> float:
    """Share of ``pairs`` whose positive text scores strictly above all its negatives (cosine similarity to
    the masked question). ``model``: a sentence-transformers directory or a ``train.ranker`` artifact; None
    is the packaged zero-shot encoder."""
    ps = list(pairs)
    if not ps:
        return 0.0
    wins = _scores(_model_path(model), ps)
    return sum(wins) / len(wins)


def ranking_accuracy_by_shape(model: Path | str | None, pairs: Iterable[Pair]) -> dict[str, float]:
    """:func:`ranking_accuracy` per candidate shape (and ``"all"``)."""
    ps = list(pairs)
    wins = _scores(_model_path(model), ps) if ps else []
    by: dict[str, list[bool]] = defaultdict(list)
    for p, w in zip(ps, wins, strict=True):
        by[p.shape].append(w)
        by["all"].append(w)
    return {k: sum(v) / len(v) for k, v in sorted(by.items())}


# ``kgllm.train.ranker(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_ranker)
