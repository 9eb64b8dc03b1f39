"""Retrieval of the triples that answer a question: vector-only, graph-only and hybrid.

Takes: a question and a :class:`kgllm.index.facade.KGIndex` (``kgllm.index.load_index``); optionally a
:class:`~kgllm.ask.sparql_templates.SparqlRunner` (embedded store or endpoint) for the candidate queries.
Makes: a :class:`Retrieval`: the ranked candidate triple ids (fused), the structured result of the graph
(topic entity, predicate path, answers, supporting triple ids per answer, the aggregate) when the graph
answers, the vector hits, and per-stage timings in milliseconds.

* **vector**: the question embedded and searched against the verbalized triples (faiss); no linking.
* **graph**: entity linking, then question understanding (kgllm.ask.understand): candidate queries built
  from the graph around the linked mentions, ranked, and the best run (SPARQL when a runner is given, else the
  index's adjacency); "What is X?" answers with X's description. The remaining neighbourhood is ranked by
  relation score plus the personalized PageRank (HippoRAG-style) of the far end.
* **hybrid**: both; the question's top vector hits support the candidates whose entity and predicate they
  are about (vector hits rescue lexical gaps), and the two rankings are fused by reciprocal rank fusion
  (kgllm.ask.fusion).
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import UsageError
from ..rdf import DBO, RDFS_COMMENT, SKOS, WN, iri
from .candidates import VAR_X, Query
from .fusion import FUSIONS
from .question import Question, parse_question
from .ranker import Ranker
from .relations import RelationMatcher, one_thread
from .understand import UnderstandConfig, Understander

RETRIEVERS = ("vector", "graph", "hybrid")
# What "What is X?" answers with, in order of preference.
DESCRIPTION_PREDICATES = (iri(WN + "definition"), iri(SKOS + "definition"), RDFS_COMMENT, iri(DBO + "abstract"))


@dataclass
class RetrieveConfig:
    k: int = 10                     # triples in the fused context
    vector_k: int = 20              # vector hits fetched
    fusion: str = "rrf"             # rrf | convex (see kgllm.ask.fusion)
    rrf_k: int = 60
    description_score: float = 0.6  # the confidence of a "What is X?" answer (X's definition or abstract)
    min_vector: float = 0.6         # cosine a vector hit needs to answer on its own
    max_candidates: int = 3         # linker candidates tried per mention
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
        self.ranker.new_question()
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
                    u = self._description(c.iri)
                    if u is not None:
                        return self._path_answer(u, self.config.description_score)
        u = self.understander.understand(text, q, mentions, vector_hits)
        return None if u is None else self._path_answer(u, u.query.score)

    def _description(self, topic: str):
        """The entity's definition, comment or abstract (the first of :data:`DESCRIPTION_PREDICATES` it has),
        run as a lookup candidate."""
        edges = self._edges(topic)
        for p in DESCRIPTION_PREDICATES:
            if (p, "out") in edges:
                return self.understander.run(Query("lookup", ((topic, p, VAR_X),), "", (topic,), ((p, "out"),),
                                                   topic))
        return None

    def _path_answer(self, u, score: float) -> PathAnswer:
        c = u.query
        return PathAnswer(c.topic or "", list(c.path), u.answers, u.support, score, "candidate",
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
