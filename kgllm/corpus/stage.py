"""Stage ``corpus``: graph artifacts -> annotated training text, SFT and DPO data, leakage-free splits.

The stage's registration (:data:`STAGES`), its config dataclasses and its run function.

Takes: graph artifacts (``kgllm pull ...`` / ``kgllm validate``) and optional ontology files.
Makes: a ``corpus`` artifact::

    manifest.json                  counts: every triple read is accounted for (role / in documents)
    pretrain/{train,validation,test}.jsonl  {"id","text","entity","spans":[...],"sentences":[...]}
    sft/{train,validation,test}.jsonl       {"id","prompt","completion","type","triple_ids","answers","entity"}
    dpo/{train,validation,test}.jsonl       {"id","prompt","chosen","rejected","triple_ids","rejected_triple","entity"}
    markup/{train,validation,test}.jsonl    {"id","entity","text"}: inline entity links
    ner/{train,validation,test}.conll       BIO tags, entity class as label
    triples.jsonl                           {"id","s","p","o","text"} for each triple the corpus uses
    leakage.json                            the split's leakage report (see kgllm.corpus.splits)
    dedup.json                              removed duplicates: {"pretrain": [...], "sft": [...], "dpo": [...]}

An empty input graph, or one that yields no rows at all, is :class:`~kgllm.errors.EmptyResultError`
(exit 1, nothing written); MinHash settings LSH cannot use are a ConfigError before any work.

The work runs in entity shards (:mod:`kgllm.corpus.shards`: one after another in this process, or as Ray
tasks when :mod:`kgllm.engine` says so), so memory holds the graph and one shard's rows, not every row;
:func:`build` is the all-in-memory reference the sharded path equals byte for byte.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..artifacts import (
    ArtifactWriter,
    Manifest,
    git_commit,
    input_digest,
    package_versions,
    resume_dir,
)
from ..config import check_ranges
from ..engine import open_engine
from ..errors import EmptyResultError
from ..log import logger, progress
from ..rdf import count_triples
from ..registry import Stage
from .dedup import check_lsh, dedup
from .kg import KG
from .lexicon import RelationLexicon
from .neural import NeuralVerbalizer
from .planner import EntityPlan, Planner
from .preferences import Corrupter, dpo_rows
from .realign import verbalize_documents
from .sft import sft_rows
from .shards import triple_text, write_corpus
from .splits import row_text

__all__ = ["STAGES", "CorpusConfig", "build", "run", "triple_text"]

PARTS = ("pretrain", "sft", "dpo")


@dataclass
class SplitConfig:
    """Entity-level split: every document and example about one entity lands in the same split."""

    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    # A train text this similar (MinHash Jaccard estimate) to a validation/test text is removed.
    near_dup_threshold: float = 0.8


@dataclass
class DedupConfig:
    exact: bool = True
    near: bool = True
    threshold: float = 0.85      # MinHash LSH Jaccard threshold over word 3-shingles
    num_perm: int = 64


@dataclass
class CorpusVerbalizerConfig:
    """Who writes the documents' fact sentences: the rule-based templates (``model`` unset) or a model
    trained by ``kgllm train verbalizer``, checked, retried and backed by the templates
    (:mod:`kgllm.corpus.neural`). SFT/DPO rows and ``triples.jsonl`` texts stay template-made."""

    model: Path | None = None   # a `kgllm train verbalizer` model directory (or any causal LM checkpoint)
    max_triples: int = 4        # facts per generated text: consecutive template sentences up to this many facts
    batch_size: int = 16        # texts decoded at once (divided by retry_beams for the retry)
    max_new_tokens: int = 192   # generated tokens per text at most
    retry_beams: int = 4        # a failing text is retried with this many beams (0: straight to the templates)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: the GPU when there is one


@dataclass
class CorpusConfig:
    ontology: list[Path] = field(default_factory=list)  # OWL/RDF files giving rdfs:labels of predicates/classes
    seed: int = 0
    language: str = "en"             # preferred language of labels and abstracts
    include_abstracts: bool = True   # rdfs:comment / dbo:abstract text (cleaned) in the entity documents
    sft_phrasings: int = 2           # one-hop questions per (entity, predicate), each a different phrasing
    max_two_hop: int = 4             # two-hop questions per entity
    max_list_objects: int = 20       # "list all" questions only for predicates with 2..N objects
    dpo_per_fact: int = 1            # rejected answers per (entity, predicate) group
    max_facts_per_entity: int = 200  # a hub entity's paragraph is cut here (the rest counted as truncated)
    split: SplitConfig = field(default_factory=SplitConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    verbalizer: CorpusVerbalizerConfig = field(default_factory=CorpusVerbalizerConfig)

    def __post_init__(self):
        # Ranges, checked when the config is loaded (a ConfigError naming the key, exit 2).
        sp, dd, vb = self.split, self.dedup, self.verbalizer
        check_ranges((
            ("verbalizer.max_triples", vb.max_triples, vb.max_triples >= 1, "at least 1"),
            ("verbalizer.batch_size", vb.batch_size, vb.batch_size >= 1, "at least 1"),
            ("verbalizer.max_new_tokens", vb.max_new_tokens, vb.max_new_tokens >= 1, "at least 1"),
            ("verbalizer.retry_beams", vb.retry_beams, vb.retry_beams >= 0, "0 (no retry) or more"),
            ("sft_phrasings", self.sft_phrasings, self.sft_phrasings >= 0, "0 or more"),
            ("max_two_hop", self.max_two_hop, self.max_two_hop >= 0, "0 or more"),
            ("max_list_objects", self.max_list_objects, self.max_list_objects >= 0, "0 or more"),
            ("dpo_per_fact", self.dpo_per_fact, self.dpo_per_fact >= 0, "0 or more"),
            ("max_facts_per_entity", self.max_facts_per_entity, self.max_facts_per_entity >= 1, "at least 1"),
            ("split.validation", sp.validation, 0 <= sp.validation < 1, "in [0, 1) (a share of the entities)"),
            ("split.test", sp.test, 0 <= sp.test < 1, "in [0, 1) (a share of the entities)"),
            ("split.validation + split.test", round(sp.validation + sp.test, 6), sp.validation + sp.test < 1,
             "below 1 (the rest is the train split)"),
            ("split.near_dup_threshold", sp.near_dup_threshold, 0 < sp.near_dup_threshold < 1,
             "in (0, 1) (a Jaccard similarity)"),
            ("dedup.threshold", dd.threshold, 0 < dd.threshold < 1, "in (0, 1) (a Jaccard similarity)"),
            ("dedup.num_perm", dd.num_perm, dd.num_perm >= 4, "at least 4 (MinHash permutations; default 64)"),
        ))
        if not self.language.strip():
            raise ValueError("language must be a language tag such as en")


STAGES = [
    Stage(name="corpus", config=CorpusConfig, run="kgllm.corpus.stage:run", kind="corpus",
          help="graph artifacts -> annotated pretrain text, SFT and DPO data with leakage-free splits",
          min_inputs=1),
]


def build(kg: KG, config: CorpusConfig, verbalizer: NeuralVerbalizer | None = None
          ) -> tuple[dict, dict, dict, Counter]:
    """Plans, rows, dedup records and counts for a loaded graph (no files written). With a
    ``verbalizer``, the documents' fact sentences are the model's where they pass the check
    (:func:`kgllm.corpus.realign.verbalize_documents`; its counts as ``verbalizer_*``)."""
    planner = Planner(kg, RelationLexicon(kg.label_of), include_abstracts=config.include_abstracts,
                      max_facts=config.max_facts_per_entity)
    plans: dict[str, EntityPlan] = {}
    for e in progress(planner.subjects(), desc="planning documents", unit="entity"):
        plans[e] = planner.plan(e)
    counts: Counter = Counter()
    if verbalizer is not None:
        tally = verbalize_documents(plans, kg, verbalizer, max_triples=config.verbalizer.max_triples)
        counts.update({f"verbalizer_{k}": v for k, v in tally.items()})
    docs = [p.doc for p in plans.values() if p.doc is not None]
    counts["facts_truncated"] = sum(p.truncated for p in plans.values())
    sft = list(progress(sft_rows(planner, plans, phrasings=config.sft_phrasings, max_two_hop=config.max_two_hop,
                                 max_list_objects=config.max_list_objects), desc="SFT pairs", unit="row"))
    cor = Corrupter(planner, config.seed)
    dpo = list(progress(dpo_rows(planner, plans, per_group=config.dpo_per_fact, seed=config.seed, corrupter=cor),
                        desc="DPO pairs", unit="row"))
    counts["dpo_facts_without_false_candidate"] = cor.no_candidate
    rows = {"pretrain": docs, "sft": sft, "dpo": dpo}
    removed = {}
    for part in PARTS:
        near = config.dedup.near and part == "pretrain"  # templated QA rows are alike by design: exact only
        kept, rem = dedup(rows[part], lambda r, part=part: row_text(part, r), exact=config.dedup.exact, near=near,
                          threshold=config.dedup.threshold, num_perm=config.dedup.num_perm)
        counts[f"{part}_rows"] = len(rows[part])
        counts[f"{part}_exact_duplicates"] = sum(1 for r in rem if r["kind"] == "exact")
        counts[f"{part}_near_duplicates"] = sum(1 for r in rem if r["kind"] == "near")
        rows[part] = kept
        removed[part] = rem
    return plans, rows, removed, counts


def run(inputs: list[Path], out: Path, config: CorpusConfig, *, pipeline_key: str | None = None,
        shards: int | None = None) -> Manifest:
    """The stage (see the module docstring); ``shards`` fixes the number of entity shards (None: by size)."""
    if config.dedup.near:
        check_lsh(config.dedup.threshold, config.dedup.num_perm, "dedup.threshold")
    check_lsh(config.split.near_dup_threshold, config.dedup.num_perm, "split.near_dup_threshold")
    if count_triples(inputs) == 0:
        raise EmptyResultError(f"{', '.join(map(str, inputs))}: the graph holds no triples; nothing to verbalize "
                               "(check the pull or validate step that wrote it)")
    vb = config.verbalizer
    neural = None
    if vb.model is not None:
        neural = NeuralVerbalizer(vb.model, batch_size=vb.batch_size, max_new_tokens=vb.max_new_tokens,
                                  retry_beams=vb.retry_beams, device=vb.device)
    kg = KG.from_graphs(inputs, config.ontology, config.language)
    logger.info("corpus: %d triples from %d graph(s)", kg.triples, len(inputs))
    empty = (f"{', '.join(map(str, inputs))}: no documents, SFT or DPO rows could be made from {kg.triples} "
             "triples (only types, labels or skipped predicates?)")
    model_input = [neural.path] if neural is not None else []  # its manifest hash is recorded with the inputs
    all_inputs = [*inputs, *config.ontology, *model_input]
    key = {"config": asdict(config), "inputs": [input_digest(p) for p in all_inputs], "shards": shards,
           "code": [package_versions().get("kgllm"), git_commit()]}
    resume = None
    try:
        with ArtifactWriter(out, "corpus", config=config, inputs=all_inputs, pipeline_key=pipeline_key) as w, \
                open_engine() as eng:
            # ``.NAME.shards-KEY`` beside the output (once the writer has checked the destination)
            resume = resume_dir(w.out, key, "shards", RESUME_OWNER)
            _write(w, kg, config, eng, neural, shards, empty, resume, vb)
    except BaseException as e:
        # Finished shards stay for the rerun after a stop or a crash; nothing else does.
        if resume is not None and (isinstance(e, EmptyResultError) or not any(resume.rglob("*.done.json"))):
            shutil.rmtree(resume, ignore_errors=True)
        raise
    if resume is not None:  # written: the finished shards are of no more use
        shutil.rmtree(resume, ignore_errors=True)
    return w.manifest  # the CLI prints the counts (print_artifact)


RESUME_OWNER = "kgllm-corpus-resume"


def _write(w, kg, config, eng, neural, shards, empty, resume, vb) -> None:
    """The artifact's files and counts, inside the writer (see :func:`run`)."""
    # Per-entity work in shards (in this process, or Ray tasks), then dedup, splits and the files.
    res = write_corpus(kg, config, w.path, eng, neural, shards=shards, empty=empty, resume=resume)
    report, counts = res["report"], res["counts"]
    (w.path / "leakage.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (w.path / "dedup.json").write_text(json.dumps(res["removed"], indent=2, ensure_ascii=False) + "\n",
                                       "utf-8")
    not_in_docs = res["not_in_docs"]
    w.counts.update({
        "triples": kg.triples,
        "triples_in_documents": kg.triples - sum(not_in_docs.values()),
        "triples_not_in_documents": dict(sorted(not_in_docs.items())),
        "triples_by_role": dict(sorted(res["roles"].items())),
        "triples_jsonl": res["triples_jsonl"],
        "entities": counts.pop("entities"),
        "documents": counts.pop("documents"),
        **{k: v for k, v in sorted(counts.items())},
        **res["split_counts"],
        "leakage_removed_triple_overlap": sum(report["removed"]["triple_overlap"].values()),
        "leakage_removed_near_duplicate": sum(report["removed"]["near_duplicate"].values()),
        "leakage_removed_held_out_cross_split": sum(report["removed"]["held_out_cross_split"].values()),
        "leaks": len(report["leaks"]["triple_ids"]) + len(report["leaks"]["near_duplicates"]),
    })
    # Which verbalizer wrote the documents' fact sentences (the model: its path and manifest hash).
    w.extra["verbalizer"] = ({"kind": "templates"} if neural is None
                             else {"kind": "model", **neural.info, **neural.speed,
                                   "max_triples": vb.max_triples, "retry_beams": vb.retry_beams})
    w.extra["sft_types"] = res["sft_types"]
    # Where the shards ran (no part of any content hash: the files are the same either way).
    w.extra["engine"] = {**eng.report(), "shards": res["shards"], "shards_reused": res["shards_reused"]}

