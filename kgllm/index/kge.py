"""Knowledge graph embeddings with PyKEEN: train, evaluate (filtered MRR, Hits@1/3/10), save without pickle.

Takes: a graph artifact (its entity-to-entity triples; rdf:type left out by default) and an
:class:`~kgllm.index.stage.EmbedConfig`, or PyKEEN triples factories (e.g. the bundled Nations dataset).
Makes: a KGE artifact (kind ``kge``; :func:`run_embed` is the ``embed`` stage)::

    kge/manifest.json         counts (triples used / left out and why, split sizes), metrics
    kge/model.safetensors     the model's state dict (complex tensors as complex64)
    kge/entities.json         entity term -> id (ids from sorted N-Triples terms, as PyKEEN assigns them)
    kge/relations.json        relation term -> id
    kge/train.npy, valid.npy, test.npy   int64 (n, 3) id-triples of the split
    kge/config.json           model name and hyperparameters (enough to rebuild the model)
    kge/metrics.json          filtered rank-based metrics on the test split (both sides, realistic ranks)

:class:`KGEModel` loads it back and offers ``score``, ``near_misses(s, p, k)`` (the highest-scoring *false*
objects for DPO negative sampling), ``entity_vectors()`` and ``vector_index()`` (faiss over entity vectors).
``upsert``/``delete`` change the set of known facts that near misses exclude (a deleted fact is never
treated as known-true nor returned as a fact; new entities need retraining to get vectors).
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, Manifest, atomic_write_json, read_manifest
from ..errors import InputError, MissingDependency
from ..log import logger
from ..rdf import iri, iter_graph
from .stage import EmbedConfig
from .vector import EXACT_THRESHOLD, VectorIndex

KGE_KIND = "kge"
METRIC_KEYS = {"mrr": "inverse_harmonic_mean_rank", "hits_at_1": "hits_at_1", "hits_at_3": "hits_at_3",
               "hits_at_10": "hits_at_10"}


def _pykeen():
    try:
        import pykeen  # noqa: F401
    except ImportError as e:
        raise MissingDependency("pykeen", "index") from e
    import pykeen.pipeline
    import pykeen.triples

    return pykeen


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def eval_batch_size(num_entities: int, dim: int) -> int:
    """Evaluation batch size that keeps the scores of all candidate entities at about 50 M numbers per
    batch. PyKEEN's automatic batch-size search tries ever larger batches, which on CPU (and with RotatE's
    broadcast over every entity) means many GB of RAM."""
    return max(1, min(256, int(5e7 // max(1, num_entities * dim))))


def train_factories(training, validation, testing, config) -> tuple[object, dict]:
    """Train ``config.model`` on PyKEEN triples factories; returns the model and filtered test metrics."""
    pykeen = _pykeen()
    import torch

    torch.manual_seed(config.seed)
    kwargs = {"embedding_dim": config.dim}
    # PyKEEN runs gc.collect() every epoch; with torch/transformers imported that scans millions of objects
    # (about 1 s each time on a busy CPU, more than a small epoch takes). Freezing the objects that exist now
    # moves them out of the collector's view; the training's own garbage is still collected.
    gc.freeze()
    try:
        result = _pipeline(pykeen, training, validation, testing, config, kwargs)
    finally:
        gc.unfreeze()
    mr = result.metric_results
    metrics = {k: round(float(mr.get_metric(f"both.realistic.{v}")), 4) for k, v in METRIC_KEYS.items()}
    metrics["train_seconds"] = round(float(result.train_seconds), 2)
    metrics["evaluate_seconds"] = round(float(result.evaluate_seconds), 2)
    losses = result.losses
    metrics["final_loss"] = round(float(losses[-1]), 5) if losses else None
    return result.model, metrics


def _pipeline(pykeen, training, validation, testing, config, kwargs):
    return pykeen.pipeline.pipeline(
        training=training, validation=validation, testing=testing,
        model=config.model, model_kwargs=kwargs,
        optimizer="Adam", optimizer_kwargs={"lr": config.lr},
        negative_sampler="basic", negative_sampler_kwargs={"num_negs_per_pos": config.negatives},
        training_kwargs={"num_epochs": config.epochs, "batch_size": config.batch_size, "use_tqdm": False,
                         "pin_memory": _device(config.device) != "cpu"},
        evaluator_kwargs={"filtered": True}, evaluation_kwargs={"use_tqdm": False, "batch_size": eval_batch_size(training.num_entities, config.dim)},
        random_seed=config.seed, device=_device(config.device), use_tqdm=False,
    )


def graph_triples(graph_dir: str | Path, config) -> tuple[np.ndarray, dict]:
    """Entity-to-entity triples of a graph artifact as labelled ``(n, 3)`` N-Triples terms, with counts
    of everything left out (literal objects, excluded predicates, over the cap)."""
    keep_p = {iri(p) for p in config.predicates}
    drop_p = {iri(p) for p in config.exclude_predicates}
    rows, counts = [], {"read": 0, "literal_object": 0, "excluded_predicate": 0, "over_cap": 0}
    for s, p, o in iter_graph(graph_dir):
        counts["read"] += 1
        if not o.startswith(("<", "_:")):
            counts["literal_object"] += 1
        elif (keep_p and p not in keep_p) or p in drop_p:
            counts["excluded_predicate"] += 1
        else:
            rows.append((s, p, o))
    rows.sort()
    if config.max_triples and len(rows) > config.max_triples:
        counts["over_cap"] = len(rows) - config.max_triples
        rows = rows[: config.max_triples]
    counts["used"] = len(rows)
    return np.array(rows, dtype=str).reshape(-1, 3), counts


def run_embed(inputs: list[Path], out: Path, config: EmbedConfig, *, pipeline_key: str | None = None) -> Manifest:
    """The ``embed`` stage: one graph artifact -> a KGE artifact."""
    return train_on_graph(inputs[0], out, config, pipeline_key=pipeline_key)


def train_on_graph(graph_dir: Path, out: Path, config: EmbedConfig, *, pipeline_key: str | None = None
                   ) -> Manifest:
    pykeen = _pykeen()
    labeled, counts = graph_triples(graph_dir, config)
    if len(labeled) < 10:
        raise InputError(f"{graph_dir}: only {len(labeled)} entity-to-entity triples to embed "
                         f"(counts: {counts}); check embed.predicates / exclude_predicates")
    tf = pykeen.triples.TriplesFactory.from_labeled_triples(labeled)
    ratios = list(config.split)
    if len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-6:
        raise InputError(f"embed.split must be three ratios summing to 1 (train, validation, test), got {ratios}")
    train, valid, test = tf.split(ratios, random_state=config.seed)
    logger.info("embed: %s on %d/%d/%d triples, %d entities, %d relations", config.model, train.num_triples,
                valid.num_triples, test.num_triples, tf.num_entities, tf.num_relations)
    model, metrics = train_factories(train, valid, test, config)
    with ArtifactWriter(out, KGE_KIND, config=config, inputs=[graph_dir], pipeline_key=pipeline_key) as w:
        save_model(w.path, model, tf.entity_to_id, tf.relation_to_id, train, valid, test, config, metrics)
        w.counts.update({f"triples_{k}": v for k, v in counts.items()})
        w.counts.update(train=train.num_triples, validation=valid.num_triples, test=test.num_triples,
                        entities=tf.num_entities, relations=tf.num_relations)
        w.extra["metrics"] = metrics
    return w.manifest


def save_model(d: Path, model, entity_to_id, relation_to_id, train, valid, test, config, metrics) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "model.safetensors"))
    atomic_write_json(d / "entities.json", dict(sorted(entity_to_id.items(), key=lambda x: x[1])))
    atomic_write_json(d / "relations.json", dict(sorted(relation_to_id.items(), key=lambda x: x[1])))
    for name, f in (("train", train), ("valid", valid), ("test", test)):
        np.save(d / f"{name}.npy", f.mapped_triples.cpu().numpy().astype(np.int64))
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    atomic_write_json(d / "config.json", {"model": config.model, "dim": config.dim, "seed": config.seed,
                                          "config": cfg})
    atomic_write_json(d / "metrics.json", metrics)


class KGEModel:
    """A trained KGE model with its id maps; see the module docstring."""

    def __init__(self, model, entity_to_id: dict[str, int], relation_to_id: dict[str, int],
                 known: set[tuple[int, int, int]], info: dict):
        self.model = model.eval()
        self.entity_to_id = entity_to_id
        self.relation_to_id = relation_to_id
        self.id_to_entity = {i: e for e, i in entity_to_id.items()}
        self.known = known
        self.info = info

    @classmethod
    def load(cls, d: str | Path, device: str = "cpu") -> KGEModel:
        pykeen = _pykeen()
        import torch
        from pykeen.models import model_resolver
        from safetensors.torch import load_file

        d = Path(d)
        read_manifest(d, KGE_KIND)
        info = json.loads((d / "config.json").read_text("utf-8"))
        ents = json.loads((d / "entities.json").read_text("utf-8"))
        rels = json.loads((d / "relations.json").read_text("utf-8"))
        parts = {n: np.load(d / f"{n}.npy") for n in ("train", "valid", "test")}
        tf = pykeen.triples.TriplesFactory(torch.as_tensor(parts["train"]), entity_to_id=ents, relation_to_id=rels)
        model = model_resolver.make(info["model"], {"embedding_dim": info["dim"]}, triples_factory=tf,
                                    random_seed=info["seed"])
        model.load_state_dict(load_file(str(d / "model.safetensors")))
        model.to(device)
        known = {tuple(map(int, t)) for p in parts.values() for t in p}
        return cls(model, ents, rels, known, info)

    # ------------------------------------------------------------------ queries

    def _ids(self, s: str, p: str) -> tuple[int, int]:
        s, p = _key(self.entity_to_id, s), _key(self.relation_to_id, p)
        if s not in self.entity_to_id:
            raise InputError(f"KGE: unknown entity {s} (not in the training graph; retrain to embed it)")
        if p not in self.relation_to_id:
            raise InputError(f"KGE: unknown relation {p}")
        return self.entity_to_id[s], self.relation_to_id[p]

    def score_objects(self, s: str, p: str) -> np.ndarray:
        """Score of ``(s, p, o)`` for every entity ``o`` (higher = more plausible)."""
        import torch

        h, r = self._ids(s, p)
        with torch.no_grad():
            dev = next(self.model.parameters()).device
            return self.model.score_t(torch.tensor([[h, r]], device=dev)).squeeze(0).float().cpu().numpy()

    def near_misses(self, s: str, p: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` highest-scoring objects ``o`` such that ``(s, p, o)`` is *not* a known fact (and
        ``o != s``): plausible but false answers, for DPO rejected completions."""
        h, r = self._ids(s, p)
        scores = self.score_objects(s, p)
        order = np.argsort(-scores, kind="stable")
        out = []
        for o in order.tolist():
            if o == h or (h, r, o) in self.known:
                continue
            out.append((self.id_to_entity[o], float(scores[o])))
            if len(out) >= k:
                break
        return out

    def entity_vectors(self) -> tuple[list[str], np.ndarray]:
        """Entity terms (by id) and their embeddings as float32 (complex ones as [real, imaginary])."""
        import torch

        with torch.no_grad():
            v = self.model.entity_representations[0](indices=None).detach().cpu()
        if v.is_complex():
            v = torch.cat([v.real, v.imag], dim=-1)
        keys = [self.id_to_entity[i] for i in range(len(self.id_to_entity))]
        return keys, v.reshape(len(keys), -1).numpy().astype(np.float32)

    def vector_index(self, exact_threshold: int = EXACT_THRESHOLD) -> VectorIndex:
        """A faiss :class:`~kgllm.index.vector.VectorIndex` over the L2-normalized entity vectors."""
        keys, v = self.entity_vectors()
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return VectorIndex.build(keys, v, exact_threshold=exact_threshold)

    # ------------------------------------------------------------------ updates

    def upsert(self, triples: Iterable[tuple[str, str, str]]) -> int:
        """Record facts as known (so near misses never propose them). Facts with unknown entities or
        relations are not embeddable without retraining and are counted out (returned: how many were known)."""
        n = 0
        for s, p, o in triples:
            s, p, o = _key(self.entity_to_id, s), _key(self.relation_to_id, p), _key(self.entity_to_id, o)
            if s in self.entity_to_id and o in self.entity_to_id and p in self.relation_to_id:
                self.known.add((self.entity_to_id[s], self.relation_to_id[p], self.entity_to_id[o]))
                n += 1
        return n

    def delete(self, triples: Iterable[tuple[str, str, str]]) -> int:
        n = 0
        for s, p, o in triples:
            e, r = self.entity_to_id, self.relation_to_id
            key = (e.get(_key(e, s)), r.get(_key(r, p)), e.get(_key(e, o)))
            if key in self.known:
                self.known.discard(key)
                n += 1
        return n


def _term(x: str) -> str:
    return x if x.startswith(("<", "_:")) else iri(x)


def _key(m: dict, x: str) -> str:
    """``x`` as the maps spell it: plain labels (PyKEEN datasets) or N-Triples IRIs (graphs, bare or not)."""
    return x if x in m else _term(x)
