"""Pipeline stage ``corpus`` (config dataclasses only; the run function imports lazily).

Takes: one or more graph artifacts (WordNet, DBpedia, any harvested graph).
Makes: a ``corpus`` artifact (layout in :mod:`kgllm.corpus.stage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Stage


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

    def __post_init__(self):
        # Ranges, checked when the config is loaded (a ConfigError naming the key, exit 2).
        sp, dd = self.split, self.dedup
        for key, value, ok, want in (
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
        ):
            if not ok:
                raise ValueError(f"{key} must be {want}, got {value}")
        if not self.language.strip():
            raise ValueError("language must be a language tag such as en")


STAGES = [
    Stage(name="corpus", config=CorpusConfig, run="kgllm.corpus.stage:run", kind="corpus",
          help="graph artifacts -> annotated pretrain text, SFT and DPO data with leakage-free splits",
          min_inputs=1),
]
