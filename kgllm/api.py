"""The typed Python API: one function per stage, the same path the CLI and ``kgllm run`` take.

Takes: input artifacts (:class:`~kgllm.artifacts.Artifact` objects or paths), an output directory, and a
stage config: a config dataclass, keyword overrides of its keys, or both (keywords win).
Makes: the stage's artifact, returned as an :class:`~kgllm.artifacts.Artifact` with ``.path`` and
``.manifest``.

Each stage package exposes its functions under the CLI's names::

    import kgllm

    g = kgllm.pull.wordnet(out="runs/wn", roots=["dog.n.01"])
    c = kgllm.validate(g, ontology=["ontologies/wordnet/wn.ttl"], reasoner="none", out="runs/wn-clean")
    idx = kgllm.index(c, out="runs/wn-index", vector={"enabled": False})
    kgllm.ask(idx, "What is a dog a kind of?")["answer"]

``kgllm.validate``, ``kgllm.corpus``, ``kgllm.index`` and ``kgllm.ask`` are packages that can be called
(:func:`callable_package`): the package stays importable (``kgllm.validate.checks``) and calling it runs
its stage. Config keys are those of ``kgllm stages NAME``; nested keys take a mapping
(``vector={"enabled": False}``). Checks, defaults and errors are those of the CLI: a bad key is a
:class:`~kgllm.errors.ConfigError`, an output kgllm may not replace a :class:`~kgllm.errors.UsageError`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .artifacts import Artifact
from .registry import get_stage, run_stage

PathLike = str | os.PathLike


def run(stage: str, inputs: Iterable[PathLike], out: PathLike, config: Any = None, *, force: bool = False,
        **overrides: Any) -> Artifact:
    """Run the stage named ``stage`` (e.g. ``"validate"``) and return its artifact.

    ``config`` is the stage's config dataclass (or a mapping of its keys); ``overrides`` are keys that
    replace its values (a nested key takes a mapping). ``force`` allows replacing a kgllm artifact of
    another kind at ``out``.
    """
    st = get_stage(stage)
    base: Mapping = {}
    if config is not None:
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            if not isinstance(config, st.config):
                raise TypeError(f"stage {stage} takes a {st.config.__name__}, not a {type(config).__name__}")
            base = dataclasses.asdict(config)
        elif isinstance(config, Mapping):
            base = config
        else:
            raise TypeError(f"config must be a {st.config.__name__} or a mapping, not {type(config).__name__}")
    cfg = st.make_config(base, overrides, source=f"kgllm.{stage}()")
    ins = [Path(os.fspath(p)) for p in inputs]
    man = run_stage(stage, ins, out, cfg, force=force)
    return Artifact(Path(out), man) if man is not None else Artifact.open(out)


def _many(inputs: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(inputs, (str, os.PathLike)):
        return [inputs]
    return list(inputs)


# ----------------------------------------------------------------------------- pull


def pull_wordnet(*, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """WordNet 3.0 (all of it, or ``roots=["dog.n.01"]``, ``pos=[...]``, ``relations=[...]``) -> graph."""
    return run("pull.wordnet", [], out, config, force=force, **keys)


def pull_file(paths: PathLike | Iterable[PathLike], *, out: PathLike, config: Any = None, force: bool = False,
              **keys: Any) -> Artifact:
    """Local RDF files (N-Triples, Turtle, RDF/XML, N-Quads; .gz/.bz2/.xz) -> graph."""
    return run("pull.file", [], out, config, force=force, paths=[os.fspath(p) for p in _many(paths)], **keys)


def pull_sparql(endpoint: str, query: PathLike, *, out: PathLike, config: Any = None, force: bool = False,
                **keys: Any) -> Artifact:
    """A CONSTRUCT (or SELECT ?s ?p ?o) query harvested from a SPARQL endpoint, page by page -> graph."""
    return run("pull.sparql", [], out, config, force=force, endpoint=endpoint, query=os.fspath(query), **keys)


def pull_dbpedia(*, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """A DBpedia preset (``preset="class-facts"``, ``params={...}``), offline on the bundled sample by
    default (``endpoint=URL`` for a live one) -> graph."""
    return run("pull.dbpedia", [], out, config, force=force, **keys)


# ----------------------------------------------------------------------------- validate, corpus, index


def validate(graphs: PathLike | Iterable[PathLike], *, out: PathLike, config: Any = None, force: bool = False,
             **keys: Any) -> Artifact:
    """Check graphs against ontologies (``ontology=[...]``) and shapes -> clean graph + quarantine + report.
    Problems found are in ``artifact.problems`` (the CLI exits 1 on them)."""
    return run("validate", _many(graphs), out, config, force=force, **keys)


def corpus(graphs: PathLike | Iterable[PathLike], *, out: PathLike, config: Any = None, force: bool = False,
           **keys: Any) -> Artifact:
    """Graphs -> annotated pretraining text, SFT and DPO pairs, deduplicated and split without leakage."""
    return run("corpus", _many(graphs), out, config, force=force, **keys)


def index(graphs: PathLike | Iterable[PathLike], *, out: PathLike, corpus: PathLike | None = None,
          config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """Graphs (and optionally a corpus's triple texts) -> entity lexicon and linker, faiss vectors, graph."""
    inputs = _many(graphs) + ([corpus] if corpus is not None else [])
    return run("index", inputs, out, config, force=force, **keys)


def embed(graph: PathLike, *, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """A graph -> PyKEEN knowledge graph embeddings with filtered MRR and Hits@k."""
    return run("embed", [graph], out, config, force=force, **keys)


# ----------------------------------------------------------------------------- train


def _train(stage: str) -> Callable[..., Artifact]:
    def train(corpus: PathLike, *, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
        return run(stage, [corpus], out, config, force=force, **keys)

    train.__name__ = stage.split(".")[1]
    train.__qualname__ = train.__name__
    train.__doc__ = f"The {stage} stage on a corpus artifact -> model artifact (``model=`` names the start)."
    return train


train_pretrain = _train("train.pretrain")
train_sft = _train("train.sft")
train_dpo = _train("train.dpo")
train_reward = _train("train.reward")
train_kto = _train("train.kto")


def train_verbalizer(*, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """WebNLG XML (``webnlg=[...]``, read in place; ``exclude_categories=[...]`` leaves categories out) -> a
    ``model.verbalizer`` artifact: a triples-to-text model for ``kgllm verbalize --model`` and the corpus stage."""
    return run("train.verbalizer", [], out, config, force=force, **keys)


def train_ranker(*, out: PathLike, config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """Question/SPARQL pairs (``lcquad=``, ``qald=``, ``questions=[...]`` files, read in place) -> a
    ``train.ranker`` artifact: the fine-tuned question/query ranker of ``kgllm ask`` in ``OUT/model``."""
    return run("train.ranker", [], out, config, force=force, **keys)


def train_raft_data(index: PathLike | Sequence[PathLike], *, out: PathLike, config: Any = None, force: bool = False,
                    **keys: Any) -> Artifact:
    """An index artifact (or several) -> a ``corpus.raft`` artifact: grounded-answer examples (question,
    retrieved facts with distractors, answer citing [n] or "not in the graph") that ``train.sft`` trains on."""
    indices = [index] if isinstance(index, (str, os.PathLike)) else list(index)
    return run("train.raft_data", indices, out, config, force=force, **keys)


def train_injection_data(corpus: PathLike, *, out: PathLike, config: Any = None, force: bool = False,
                         **keys: Any) -> Artifact:
    """A corpus artifact -> a ``corpus.injection`` artifact: paraphrased documents of seen facts, family-A
    questions for SFT/DPO, family-B questions on held-out seen facts and an unseen-entity control."""
    return run("train.injection_data", [corpus], out, config, force=force, **keys)


# ----------------------------------------------------------------------------- ask, eval


def ask(index: PathLike, question: str, *, retriever: str = "hybrid", model: str | None = None,
        sparql: str = "store") -> dict:
    """Answer ``question`` from an index artifact: the answer, its terms and the cited triples.

    For many questions, keep an answerer: ``kgllm.ask.Answerer.from_dir(index)`` loads the index once.
    """
    from .ask.answer import load_answerer  # loads numpy/faiss-backed indices: only when asked

    return load_answerer(Path(os.fspath(index)), model=model, sparql=sparql).ask(question, retriever=retriever)


def eval_qa(index: PathLike, questions: PathLike, *, out: PathLike, config: Any = None, force: bool = False,
            **keys: Any) -> Artifact:
    """QA evaluation of an index on a question file: Hits@1, EM, F1, citation precision per retriever."""
    return run("eval.qa", [index], out, config, force=force, questions=os.fspath(questions), **keys)


# ----------------------------------------------------------------------------- feedback


def feedback_import(file: PathLike, *, out: PathLike, db: str | None = None, index: PathLike | None = None,
                    config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """A recorded feedback file -> a ``feedback.db`` artifact (a SQLite database inside it, or ``db``, a
    URL); ``index``: the index the answers came from (its content hash is stored with answers lacking one)."""
    if db is not None:
        keys["db"] = db
    return run("feedback.import", [index] if index is not None else [], out, config, force=force,
               file=os.fspath(file), **keys)


def feedback_export(inputs: PathLike | Iterable[PathLike] = (), *, out: PathLike, db: str | None = None,
                    config: Any = None, force: bool = False, **keys: Any) -> Artifact:
    """Feedback (``db``, a URL, or a ``feedback.db`` artifact among ``inputs``; graph artifacts there verify
    corrections) -> a ``corpus.feedback`` artifact: DPO pairs, KTO rows and a graph of flagged triples."""
    if db is not None:
        keys["db"] = db
    return run("feedback.export", _many(inputs), out, config, force=force, **keys)


# ----------------------------------------------------------------------------- callable packages


class _CallablePackage(types.ModuleType):
    """A package that is also its stage's function (module ``__class__`` assignment, Python >= 3.5)."""

    __kgllm_call__: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__kgllm_call__(*args, **kwargs)


def callable_package(name: str, function: Callable[..., Any]) -> None:
    """Make the package ``name`` callable as ``function`` (``kgllm.validate(...)``), keeping its modules."""
    module = sys.modules[name]
    module.__class__ = _CallablePackage
    module.__kgllm_call__ = function
