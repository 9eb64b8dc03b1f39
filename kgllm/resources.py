"""Offline resources: where they live and how ``make`` prepares them (``python -m kgllm.resources``).

``KGLLM_HOME`` (default ``~/.cache/kgllm``) holds what set-up prepares once and every run reuses:

    $KGLLM_HOME/nltk_data/corpora/wordnet/   WordNet 3.0 in nltk's layout (from Debian's wordnet-base)
    $KGLLM_HOME/models/<name>/               base models converted to transformers format (safetensors)

Nothing here downloads: each resource is built from a locally installed package.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

# (description, "module:function") run by `python -m kgllm.resources`; each is idempotent.
_PREPARE_STEPS = (
    ("WordNet 3.0 nltk data", "kgllm.pull.wordnet_data:prepare_nltk_data"),
    ("SmolLM2-135M-Instruct (safetensors)", "kgllm.train.models:prepare_default_model"),
)


# Repository folders the package reads at run time. A wheel carries copies under kgllm/_bundled/ (see
# setup.py); a checkout or editable install reads them where they are.
BUNDLED = ("queries", "ontologies", "examples/data/dbpedia-sample")
_REPO = Path(__file__).resolve().parent.parent
_PACKAGED = Path(__file__).resolve().parent / "_bundled"


def bundled(rel: str) -> Path:
    """Path of a bundled data folder or file (``queries/ask``, ``ontologies/dbpedia/dbo.owl.xz``...): the
    copy inside an installed wheel, else the repository's own."""
    packaged = _PACKAGED / rel
    return packaged if packaged.exists() else _REPO / rel


def home() -> Path:
    return Path(os.environ.get("KGLLM_HOME") or Path.home() / ".cache" / "kgllm").expanduser()


def nltk_data_dir() -> Path:
    return home() / "nltk_data"


def models_dir() -> Path:
    return home() / "models"


def prepare_all() -> int:
    for desc, target in _PREPARE_STEPS:
        mod, _, fn = target.partition(":")
        if importlib.util.find_spec(mod.rsplit(".", 1)[0]) is None or importlib.util.find_spec(mod) is None:
            continue
        result = getattr(importlib.import_module(mod), fn)()
        print(f"resource ready: {desc}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(prepare_all())
