"""The stages of the feedback package: ``feedback.import`` and ``feedback.export``.

Takes: nothing at import (the stage registry reads :data:`STAGES`).
Makes: the config dataclasses (every default stated here) and the registrations. The run functions,
:func:`kgllm.feedback.recorded.run_import` and :func:`kgllm.feedback.export.run_export`, load SQLAlchemy
and Alembic and are imported only when a stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import check_ranges
from ..registry import Stage


@dataclass
class FeedbackImportConfig:
    file: Path | None = None   # the recorded feedback file (JSONL, one answer and its feedback per line); required
    db: str | None = None      # database URL to import into; None: a SQLite feedback.db inside the artifact
    allow_empty: bool = False  # a file without answers writes an empty database instead of failing (exit 1)


@dataclass
class FeedbackExportConfig:
    db: str | None = None      # database URL (or a feedback.db artifact / SQLite file path); None: the input artifact's
    validation: float = 0.1    # share of questions (by a stable hash) in the validation split
    seed: int = 0              # salt of that hash

    def __post_init__(self):
        check_ranges((
            ("validation", self.validation, 0 <= self.validation < 1, "in [0, 1)"),
        ))


STAGES = [
    Stage("feedback.import", FeedbackImportConfig, "kgllm.feedback.recorded:run_import", "feedback.db",
          help="a recorded feedback file (answers with ratings, corrections, flags) -> a feedback database",
          min_inputs=0, max_inputs=1, required=("file",)),
    Stage("feedback.export", FeedbackExportConfig, "kgllm.feedback.export:run_export", "corpus.feedback",
          help="feedback -> DPO pairs, KTO rows and flagged triples (verified against graph inputs)",
          min_inputs=0, max_inputs=None),
]
