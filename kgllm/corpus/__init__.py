"""The corpus stage: graph artifacts -> annotated pretraining text, SFT and DPO data, splits; and the
WebNLG template verbalizer (``kgllm verbalize``).

See :mod:`kgllm.corpus.stage` for the artifact layout and docs/corpus.md for usage and the module list.
"""

from __future__ import annotations

from .. import api

# kgllm.corpus(...) runs the stage (kgllm.api.corpus); the package's modules stay importable.
api.callable_package(__name__, api.corpus)
