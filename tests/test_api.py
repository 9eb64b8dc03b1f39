"""The typed Python API: stage functions named as the CLI names them, taking artifacts or paths plus a
config, returning Artifact objects, through the same checks as the CLI."""

from __future__ import annotations

import dataclasses
import os

import pytest
from conftest import ONTOLOGIES, dbpedia_files

import kgllm
from kgllm.artifacts import Artifact
from kgllm.errors import ConfigError, UsageError
from kgllm.pull.files import FilePullConfig


@pytest.fixture(scope="module")
def wordnet_chain(tmp_path_factory):
    """pull.wordnet -> validate -> index -> ask, as the README's Python example runs it."""
    tmp = tmp_path_factory.mktemp("api")
    g = kgllm.pull.wordnet(out=tmp / "wn", roots=["dog.n.01"], relations=["hypernym", "hyponym"])
    c = kgllm.validate(g, ontology=[ONTOLOGIES / "wordnet" / "wn.ttl"], reasoner="none", out=tmp / "wn-clean",
                       severity={"missing_label": "off"})
    idx = kgllm.index(c, out=tmp / "wn-index", vector={"enabled": False})
    return g, c, idx


def test_stage_functions_chain_artifacts(wordnet_chain):
    g, c, idx = wordnet_chain
    assert isinstance(g, Artifact) and g.kind == "graph" and g.counts["triples"] > 100
    assert c.kind == "graph" and c.manifest.inputs[0]["path"] == str(g.path)
    assert idx.kind == "index" and (idx.path / "manifest.json").exists()
    assert os.fspath(idx) == str(idx.path)  # an Artifact is a path wherever a path is taken
    assert kgllm.Artifact.open(idx.path, "index").manifest.content_sha256 == idx.manifest.content_sha256


def test_ask_answers_from_an_index_artifact(wordnet_chain):
    _, _, idx = wordnet_chain
    out = kgllm.ask(idx, "What is a dog a kind of?", retriever="graph")
    assert out["citations"], out
    assert {a["label"] for a in out["answers"]} == {"canine", "domestic animal"}, out["answers"]
    assert out["answer"] == "domestic animal and canine"


def test_config_dataclass_and_keywords_combine_and_are_checked(tmp_path):
    src = dbpedia_files()[0]
    cfg = FilePullConfig(paths=[src], skip_bad=False)
    a = kgllm.pull.file(src, out=tmp_path / "g", config=cfg, skip_bad=True)
    assert a.manifest.config["skip_bad"] is True and cfg.skip_bad is False  # the config passed in is unchanged
    with pytest.raises(ConfigError, match="unknown key 'skip_badd'"):
        kgllm.pull.file(src, out=tmp_path / "g2", skip_badd=True)
    with pytest.raises(TypeError, match="FilePullConfig"):
        kgllm.validate(a, out=tmp_path / "v", config=cfg)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UsageError, match="not a kgllm artifact"):
        kgllm.pull.file(src, out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_packages_stay_packages_and_every_stage_has_a_function():
    import kgllm.validate.checks  # a module of a callable package still imports

    assert callable(kgllm.validate) and kgllm.validate.checks.__name__ == "kgllm.validate.checks"
    functions = {"pull.wordnet": kgllm.pull.wordnet, "pull.file": kgllm.pull.file, "pull.sparql": kgllm.pull.sparql,
                 "pull.dbpedia": kgllm.pull.dbpedia, "validate": kgllm.validate, "corpus": kgllm.corpus,
                 "index": kgllm.index, "embed": kgllm.index.embed, "train.pretrain": kgllm.train.pretrain,
                 "train.sft": kgllm.train.sft, "train.dpo": kgllm.train.dpo, "train.reward": kgllm.train.reward,
                 "train.kto": kgllm.train.kto, "train.ranker": kgllm.train.ranker,
                 "train.verbalizer": kgllm.train.verbalizer, "train.raft_data": kgllm.train.raft,
                 "train.injection_data": kgllm.train.injection,
                 "eval.qa": kgllm.eval.qa,
                 "feedback.import": kgllm.feedback.import_recorded, "feedback.export": kgllm.feedback.export}
    assert set(functions) == {s.name for s in kgllm.list_stages()}
    assert all(callable(f) for f in functions.values())
    # A bad key fails before any work, for a stage as heavy as training.
    with pytest.raises(ConfigError, match="unknown key"):
        kgllm.train.sft("no-corpus", out="no-out", learning_rate_typo=1)


def test_exports():
    for name in ("Answerer", "load_index", "KGIndex", "Pipeline", "Step", "Artifact", "run_stage"):
        assert getattr(kgllm, name) is not None
    assert dataclasses.is_dataclass(kgllm.Step)
