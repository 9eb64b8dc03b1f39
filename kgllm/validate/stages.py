"""The ``validate`` pipeline stage: its config dataclass (light: no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..registry import Stage
from .checks import CheckOptions


@dataclass
class ValidateConfig:
    # Ontology files (RDF/XML, Turtle, N-Triples; .xz/.gz ok). Their union is reasoned over and indexed.
    ontology: list[Path] = field(default_factory=list)
    # SHACL shapes files (see ontologies/shapes/).
    shapes: list[Path] = field(default_factory=list)
    # hermit: consistency + unsatisfiable classes (Pellet explains an inconsistency when explain is on);
    # pellet: Pellet only; none: skip OWL reasoning (the data checks still run).
    reasoner: Literal["hermit", "pellet", "none"] = "hermit"
    explain: bool = True
    java_heap_mb: int = 2000
    reasoning_timeout_s: float = 300.0
    # Per-check severity overrides: {check_name: error|warning|off}. error quarantines the triples.
    severity: dict[str, str] = field(default_factory=dict)
    checks: CheckOptions = field(default_factory=CheckOptions)
    shacl_max_triples: int = 500_000
    # Examples per check in report.json/report.md (every violation is in warnings.jsonl / quarantine/).
    max_examples: int = 20
    # Unsatisfiable classes count as a problem (exit code 1), like an inconsistent ontology.
    fail_on_unsatisfiable: bool = True

    def __post_init__(self):
        from .checks import CHECKS, SEVERITIES

        for k, v in self.severity.items():
            if k not in CHECKS:
                raise ValueError(f"severity: unknown check {k!r}; checks: {', '.join(sorted(CHECKS))}")
            if v not in SEVERITIES:
                raise ValueError(f"severity.{k}: {v!r} is not one of {', '.join(SEVERITIES)}")
        if self.java_heap_mb < 64:
            raise ValueError("java_heap_mb must be at least 64")
        if self.reasoning_timeout_s <= 0:
            raise ValueError("reasoning_timeout_s must be positive")
        for key, value in (("shacl_max_triples", self.shacl_max_triples), ("max_examples", self.max_examples)):
            if value < 0:
                raise ValueError(f"{key} must be 0 or more, got {value}")


STAGES = [
    Stage("validate", ValidateConfig, "kgllm.validate.stage:run", "graph",
          help="check graphs against ontologies (OWL reasoning, data checks, SHACL); quarantine bad triples",
          min_inputs=1),
]
