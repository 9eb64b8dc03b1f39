"""Pipeline stages of the pull step (config dataclasses only; run functions import lazily)."""

from __future__ import annotations

from ..stages import Stage

STAGES: list[Stage] = []

# Each source module below adds its Stage(s) to STAGES. Keep imports light (config dataclasses only).
