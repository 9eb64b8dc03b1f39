"""Retrieval of the triples that answer a question: vector-only, graph-only and hybrid.

Takes: a question and a :class:`kgllm.index.facade.KGIndex` (``kgllm.index.load_index``); optionally a
:class:`~kgllm.ask.sparql_templates.SparqlRunner` for the structured lookups.
Makes: a :class:`Retrieval`: the ranked candidate triple ids (fused), the structured result of the graph
(topic entity, predicate path, answers, supporting triple ids per answer) when the graph answers exactly,
the vector hits, and per-stage timings in milliseconds.

* **vector**: the question embedded and searched against the verbalized triples (faiss); no linking.
* **graph**: entity linking of the question's mentions, relation matching (kgllm.ask.relations) over the
  predicate paths that actually leave each linked entity (one hop, and two hops when a second, different
  group of words matches a predicate of the intermediate entity: predicate-aware pruning, so "Where was the
  founder of X born?" follows foundedBy then birthPlace and nothing else), then the exact lookup of the
  chosen path through a SPARQL template (queries/ask/*.rq) when a runner is given. The remaining
  neighbourhood is ranked by relation score plus the personalized PageRank (HippoRAG-style) of the far end.
* **hybrid**: both; the entities of the best vector hits join the linked entities as seeds (so a question
  whose entity the linker misses is still answered through the graph), and the two rankings are fused by
  reciprocal rank fusion (kgllm.ask.fusion).
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import UsageError
from ..rdf import DBO, RDFS_COMMENT, SKOS, WN, iri, triple_id
from .fusion import FUSIONS
from .question import Question, parse_question
from .ranker import Ranker
from .relations import RelationMatcher, RelMatch, one_thread
from .understand import UnderstandConfig, Understander, literal_value

RETRIEVERS = ("vector", "graph", "hybrid")
# What "What is X?" answers with, in order of preference.
DESCRIPTION_PREDICATES = (iri(WN + "definition"), iri(SKOS + "definition"), RDFS_COMMENT, iri(DBO + "abstract"))


@dataclass
class RetrieveConfig:
    k: int = 10                     # triples in the fused context
    vector_k: int = 20              # vector hits fetched
    fusion: str = "rrf"             # rrf | convex (see kgllm.ask.fusion)
    rrf_k: int = 60
    min_relation: float = 0.6       # lexical relation score a hop needs (half a two-word label is not enough)
    two_hop_gain: float = 0.5       # a second hop must add this much relation score over the best single hop
    inverse_penalty: float = 0.85   # facts that point *to* the entity rank below facts about it
    min_vector: float = 0.6         # cosine a vector hit needs to answer on its own
    max_candidates: int = 3         # linker candidates tried per mention
    max_mids: int = 60              # intermediate entities expanded for two-hop paths
    neighbourhood: int = 2000       # triples read around an entity
    ppr_k: int = 50
    # Global PageRank iterates over the whole graph (about 1 s per question at millions of terms), so above
    # this many terms the neighbourhood is ranked by relation score alone (a local push-based PPR would be
    # the fix; the index facade has none yet).
    ppr_max_terms: int = 300_000


@dataclass
class PathAnswer:
    """An exact answer from the graph: ``topic -p1-> (mid -p2->) answer`` (directions per hop)."""

    topic: str
    path: list[tuple[str, str]]            # [(predicate term, "out"|"in")]
    answers: list[str]                     # N-Triples terms, sorted
    support: dict[str, list[str]]          # answer term -> triple ids (both hops for two-hop)
    score: float
    how: str                               # lexical | embedding
    template: str | None = None
    query: str | None = None
    shape: str | None = None              # the candidate query's shape (kgllm.ask.candidates)
    aggregate: str | None = None          # count | ask | max | min
    boolean: bool | None = None           # the yes/no answer
    count: int | None = None              # the COUNT answer
    total: int | None = None              # answers before the cap
    features: dict = field(default_factory=dict)

    @property
    def hops(self) -> int:
        return len(self.path)


@dataclass
class Retrieval:
    retriever: str
    question: Question
    ranked: list[tuple[str, float]] = field(default_factory=list)   # triple ids, best first
    structured: PathAnswer | None = None
    vector_hits: list = field(default_factory=list)                   # kgllm.index.facade.Hit
    seeds: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self, timings: dict, name: str):
        self.t, self.name = timings, name

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.t[self.name] = round(self.t.get(self.name, 0.0) + (time.perf_counter() - self.t0) * 1000, 3)


class Retriever:
    """One object for the three retrieval modes over one index (caches relation descriptions)."""

    def __init__(self, index, config: RetrieveConfig | None = None, sparql=None, ranker: Ranker | None = None,
                 understand: UnderstandConfig | None = None):
        self.index = index
        self.config = config or RetrieveConfig()
        self.sparql = sparql
        self.matcher = RelationMatcher(index)
        self.ranker = ranker or Ranker(index.encoder)
        self.understander = Understander(index, self._edges, self.ranker, self.matcher, sparql, understand)
        self._ecache: dict = {}   # edges per entity, for one question (an index may change between questions)
        self._executor = None     # one worker thread: the question's vector search in hybrid mode

    # ------------------------------------------------------------------ entry point

    def retrieve(self, text: str, mode: str = "hybrid") -> Retrieval:
        if mode not in RETRIEVERS:
            raise UsageError(f"unknown retriever {mode!r}; choose one of {', '.join(RETRIEVERS)}")
        self._ecache = {}
        self.matcher.new_question()
        t0 = time.perf_counter()
        r = self._retrieve(text, mode)
        # Wall time: in hybrid the vector search overlaps linking and the graph search, so the stage
        # timings do not add up to it.
        r.timings["retrieval_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return r

    def _retrieve(self, text: str, mode: str) -> Retrieval:
        cfg = self.config
        timings: dict[str, float] = {}
        vec_future, vector_hits = None, []
        if mode != "graph" and "triple" in self.index.vectors:
            if mode == "hybrid":
                # The question's encoding (torch, which releases the GIL) runs beside linking and the graph
                # search over linked entities; its hits are needed only for the fallback seeds and fusion.
                vec_future = self._pool().submit(self._vector_search, text, timings)
            else:
                vector_hits = self._vector_search(text, timings)
        mentions = []
        if mode != "vector":
            with _Timer(timings, "link_ms"):
                mentions = self.understander.drop_properties(self.index.link(text))
        q = parse_question(text, mentions)
        r = Retrieval(mode, q, timings=timings)
        if mode == "vector":
            r.vector_hits = vector_hits
            r.ranked = [(h.key, h.score) for h in r.vector_hits][: cfg.k]
            return r
        seeds = [(c.iri, c.score) for m in mentions for c in m.candidates[: cfg.max_candidates]]
        if vec_future is not None:
            r.vector_hits = vec_future.result()
        with _Timer(timings, "graph_ms"):
            best = self._understand(text, q, mentions, r.vector_hits)
        if self.sparql is not None:
            # SPARQL runs inside the graph search (candidates are run until one answers).
            timings["sparql_ms"] = round(self.understander.sparql_ms, 3)
        r.seeds = list(dict.fromkeys(s for s, _ in seeds))
        r.structured = best
        with _Timer(timings, "expand_ms"):
            graph_rank = self._graph_ranking(q, r.seeds, best)
        if mode == "graph":
            r.ranked = graph_rank[: cfg.k]
            return r
        vec_rank = [h.key for h in r.vector_hits]
        with _Timer(timings, "fusion_ms"):
            if cfg.fusion == "convex":
                fused = FUSIONS["convex"]([graph_rank, [(h.key, h.score) for h in r.vector_hits]])
            else:
                fused = FUSIONS["rrf"]([[t for t, _ in graph_rank], vec_rank], k=cfg.rrf_k)
        r.ranked = fused[: cfg.k]
        return r

    def _understand(self, text: str, q: Question, mentions, vector_hits) -> PathAnswer | None:
        """The best candidate query (kgllm.ask.understand), run, as a :class:`PathAnswer`."""
        if not q.relation_tokens and q.wh in ("what", "who") and q.shape != "count" and len(mentions) == 1:
            # "What is X?" / "Who is X?": no relation words, so the entity's description is the answer.
            for m in mentions:
                for c in m.candidates[: self.config.max_candidates]:
                    pa = self.best_path(q, c.iri, allow_embedding=False)
                    if pa is not None:
                        pa.shape = "lookup"
                        if self.sparql is not None:
                            self._run_template(pa)
                        return pa
        u = self.understander.understand(text, q, mentions, vector_hits)
        if u is None:
            return None
        c = u.query
        return PathAnswer(c.topic or "", list(c.path), u.answers, u.support, c.score, "candidate",
                          template=c.shape, query=u.sparql, shape=c.shape, aggregate=u.aggregate,
                          boolean=u.boolean, count=u.count, total=u.total, features=c.features)

    def _vector_search(self, text: str, timings: dict) -> list:
        with _Timer(timings, "vector_ms"), one_thread():
            return self.index.search(text, self.config.vector_k, kind="triple")

    def _pool(self):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgllm-vector")
        return self._executor

    # ------------------------------------------------------------------ graph paths

    def _edges(self, term: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """``(predicate, direction) -> [(far end term, triple id)]`` around ``term`` (live triples)."""
        cache = self._ecache
        if term in cache:
            return cache[term]
        out: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        cache[term] = out
        ids = self.index.neighbors(term, 1, limit=self.config.neighbourhood)
        for rec in self.index.triples(ids):
            if rec.s == term:
                out[(rec.p, "out")].append((rec.o, rec.id))
            elif rec.o == term:
                out[(rec.p, "in")].append((rec.s, rec.id))
        return out

    def best_path(self, q: Question, topic: str, allow_embedding: bool = True) -> PathAnswer | None:
        """The predicate path from ``topic`` that the question's relation words match best, or None."""
        cfg, toks = self.config, q.relation_tokens
        edges = self._edges(topic)
        if not edges:
            return None
        if not toks:
            # "What is X?" / "Who is X?": no relation words, so the entity's description is the answer.
            if q.wh not in ("what", "who"):
                return None
            for p in DESCRIPTION_PREDICATES:
                if (p, "out") in edges:
                    return self._one_hop_answer(topic, (p, "out"), edges[(p, "out")], cfg.min_relation, "lexical")
            return None
        singles: list[tuple[float, tuple[str, str], RelMatch]] = []
        firsts: list[tuple[tuple[str, str], RelMatch]] = []
        for key in sorted(edges):
            pred, d = key
            pen = 1.0 if d == "out" else cfg.inverse_penalty
            m = self.matcher.lexical(pred, toks, q.wh)
            if m.score >= cfg.min_relation:
                singles.append((m.score * pen, key, m))
            m0 = self.matcher.lexical(pred, toks, None)  # a first hop does not answer the wh-word
            if m0.score >= cfg.min_relation and len(m0.used) < len(toks):
                firsts.append((key, RelMatch(m0.predicate, m0.score * pen, m0.used, m0.how)))
        best1 = max(singles, key=lambda x: (x[0], len(x[2].used)), default=None)
        best2 = None
        for key1, m1 in firsts:
            mids = sorted({t for t, _ in edges[key1] if t.startswith("<")})[: cfg.max_mids]
            for mid in mids:
                for key2 in sorted(self._edges(mid)):
                    pen = 1.0 if key2[1] == "out" else cfg.inverse_penalty
                    m2 = self.matcher.lexical(key2[0], toks, q.wh, exclude=m1.used)
                    if m2.score < cfg.min_relation:
                        continue
                    total = m1.score + m2.score * pen
                    if best2 is None or (-total, key1, key2) < (-best2[0], best2[1], best2[2]):
                        best2 = (total, key1, key2)
        base = best1[0] if best1 else 0.0
        if best2 is not None and best2[0] - base >= cfg.two_hop_gain:
            return self._two_hop_answer(topic, best2, edges)
        if best1 is not None:
            score, key, m = best1
            return self._one_hop_answer(topic, key, edges[key], score, "lexical")
        if not allow_embedding:
            return None
        # Fallback: embeddings of the relation words against the predicates present here.
        preds = sorted({p for p, _ in edges})
        sims = self.matcher.embedding(q.relation_text, preds)
        if not sims:
            return None
        p, s = max(sims.items(), key=lambda kv: (kv[1], kv[0]))
        if s < self.matcher.min_embedding:
            return None
        key = (p, "out") if (p, "out") in edges else (p, "in")
        return self._one_hop_answer(topic, key, edges[key], s * (1.0 if key[1] == "out" else cfg.inverse_penalty),
                                    "embedding")

    def _one_hop_answer(self, topic, key, far, score, how) -> PathAnswer:
        vals = _prefer_english(far)
        support = defaultdict(list)
        for t, tid in vals:
            support[t].append(tid)
        return PathAnswer(topic, [key], sorted(support), dict(support), round(score, 6), how)

    def _two_hop_answer(self, topic, best2, edges) -> PathAnswer:
        total, key1, key2 = best2[0], best2[1], best2[2]
        # Every intermediate entity reached by the first predicate, followed along the second.
        support: dict[str, list[str]] = defaultdict(list)
        for mid, tid1 in sorted(edges[key1]):
            if not mid.startswith("<"):
                continue
            for t, tid2 in _prefer_english(self._edges(mid).get(key2, [])):
                if t == topic:
                    continue
                support[t] += [tid1, tid2]
        return PathAnswer(topic, [key1, key2], sorted(support), {k: sorted(set(v), key=v.index)
                                                                 for k, v in support.items()},
                          round(total, 6), "lexical")

    def _run_template(self, pa: PathAnswer) -> None:
        """Exact lookup of the chosen path through a SPARQL template; its rows are the answers."""
        dirs = [d for _, d in pa.path]
        if dirs == ["out"]:
            name, params, var = "one_hop", {"subject": pa.topic, "predicate": pa.path[0][0]}, "o"
        elif dirs == ["in"]:
            name, params, var = "one_hop_inverse", {"object": pa.topic, "predicate": pa.path[0][0]}, "s"
        elif dirs == ["out", "out"]:
            name, params, var = "two_hop", {"subject": pa.topic, "first": pa.path[0][0],
                                            "second": pa.path[1][0]}, "o"
        else:
            return  # mixed directions: answered from the index's adjacency only (no template)
        rows = self.sparql.run(name, **params)
        pa.template, pa.query = name, self.sparql.last_query
        support: dict[str, list[str]] = defaultdict(list)
        p0 = pa.path[0][0]
        vals = []
        for row in rows:
            if var not in row:
                continue
            if name == "one_hop":
                o = self._graph_literal(pa.topic, p0, row["o"])
                vals.append((o, [triple_id(pa.topic, p0, o)]))
            elif name == "one_hop_inverse":
                vals.append((row["s"], [triple_id(row["s"], p0, pa.topic)]))
            elif row["o"] != pa.topic:
                o = self._graph_literal(row["mid"], pa.path[1][0], row["o"])
                vals.append((o, [triple_id(pa.topic, p0, row["mid"]),
                                 triple_id(row["mid"], pa.path[1][0], o)]))
        for t, tids in _prefer_english([(t, tids) for t, tids in vals]):
            support[t] += [x for x in tids if x not in support[t]]
        pa.answers = sorted(support)
        pa.support = dict(support)

    def _graph_literal(self, subject: str, predicate: str, term: str) -> str:
        """The graph's own spelling of a literal object that a SPARQL engine returned in canonical form.

        Engines normalise typed literals (Oxigraph and Virtuoso return ``"5"^^xsd:nonNegativeInteger`` as
        ``"5"^^xsd:integer``); the triple id, and so the citation, needs the term as the graph has it."""
        if not term.startswith('"'):
            return term
        far = [t for t, _ in self._edges(subject).get((predicate, "out"), ())]
        if term in far:
            return term
        key = literal_value(term)
        return next((t for t in far if t.startswith('"') and literal_value(t) == key), term)

    def _graph_ranking(self, q: Question, seeds: list[str], best: PathAnswer | None) -> list[tuple[str, float]]:
        """Triple ids: the exact answer's support first, then the seeds' neighbourhood ranked by relation
        score of the predicate plus the personalized PageRank of the far end."""
        ranked: dict[str, float] = {}
        if best is not None:
            for tids in best.support.values():
                for t in tids:
                    ranked[t] = max(ranked.get(t, 0.0), 10.0 + best.score)
        if not seeds:
            return sorted(ranked.items(), key=lambda kv: (-kv[1], kv[0]))
        ppr = dict(self.index.ppr(seeds[:5], self.config.ppr_k)) \
            if len(self.index.graph.terms) <= self.config.ppr_max_terms else {}
        for seed in seeds[:5]:
            for (pred, _d), far in self._edges(seed).items():
                rel = self.matcher.lexical(pred, q.relation_tokens, q.wh).score
                for t, tid in far:
                    sc = rel + ppr.get(t, 0.0)
                    if sc > ranked.get(tid, -1.0):
                        ranked[tid] = sc
        return sorted(ranked.items(), key=lambda kv: (-kv[1], kv[0]))


def _prefer_english(vals: list[tuple[str, object]]) -> list[tuple[str, object]]:
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

