"""Feedback on answers: a real database of answers and what people said about them, and its export.

Takes: answers (``kgllm ask --json`` objects) and feedback on them (ratings, corrections, flagged triples),
from ``kgllm serve`` or a recorded feedback file. Makes: a database (SQLite by default, PostgreSQL by URL;
:mod:`.store`), ``feedback.db`` artifacts (:mod:`.recorded`, the ``feedback.import`` stage) and
``corpus.feedback`` artifacts of preference pairs, KTO rows and flagged triples (:mod:`.export`, the
``feedback.export`` stage). Commands in :mod:`.cli`, the stage registrations in :mod:`.stage`.

The Python API: ``kgllm.feedback.import_recorded(file, out=...)`` and ``kgllm.feedback.export(inputs, out=...,
db=...)`` run the two stages. Importing this package imports none of its modules: :mod:`.store` loads
SQLAlchemy (and Alembic when a store opens), so ``kgllm --help`` reads only :mod:`.cli` and :mod:`.stage`.
"""

from __future__ import annotations

import importlib

from .. import api

import_recorded = api.feedback_import  # kgllm.feedback.import_recorded(file, out=...): the feedback.import stage


def __getattr__(name: str):
    # export is a module made callable (kgllm.feedback.export(...)): loaded on first use, with SQLAlchemy.
    if name == "export":
        return importlib.import_module(f"{__name__}.export")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["import_recorded"]
