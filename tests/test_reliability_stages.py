"""Reliability of the validate, corpus, verbalize, eval and serve commands: the user's exact commands run
in-process, with their exit codes (0 ok, 1 problems or nothing to work on, 2 usage/input errors) and
one-line messages. Inputs are tiny real N-Triples files pulled with ``kgllm pull file``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kgllm.artifacts import read_manifest
from kgllm.cli import main
from kgllm.errors import UsageError
from kgllm.rdf import GraphWriter

EX = "http://ex.org/"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
XSD_INT = "<http://www.w3.org/2001/XMLSchema#integer>"
TRIPLES = (f'<{EX}Alpha> {RDFS_LABEL} "Alpha"@en .\n'
           f"<{EX}Alpha> <{EX}knows> <{EX}Beta> .\n"
           f'<{EX}Beta> {RDFS_LABEL} "Beta"@en .\n')
BAD_LITERAL = f'<{EX}Alpha> <{EX}age> "abc"^^{XSD_INT} .\n'  # literal_lexical_form: an error, quarantined
ONTOLOGY = ("@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
            f"<{EX}Thing> a owl:Class .\n<{EX}knows> a owl:ObjectProperty .\n")


def pull(tmp: Path, name: str, text: str) -> Path:
    (tmp / f"{name}.nt").write_text(text)
    assert main(["pull", "file", str(tmp / f"{name}.nt"), "--out", str(tmp / name)]) == 0
    return tmp / name


def empty_graph(tmp: Path) -> Path:
    """A graph artifact of 0 triples (what `kgllm pull file empty.nt --allow-empty` writes)."""
    with GraphWriter(tmp / "empty", config={}):
        pass
    assert read_manifest(tmp / "empty").counts["triples"] == 0
    return tmp / "empty"


@pytest.fixture
def files(tmp_path, capsys):
    (tmp_path / "onto.ttl").write_text(ONTOLOGY)
    pull(tmp_path, "good", TRIPLES)
    pull(tmp_path, "bad", TRIPLES + BAD_LITERAL)
    capsys.readouterr()
    return tmp_path


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("kgllm: error: "), err
    return err[-1]


# ----------------------------------------------------------------------------- validate


def test_validate_problems_are_in_the_manifest(files, capsys):
    out = files / "v"
    rc = main(["validate", str(files / "bad"), "--ontology", str(files / "onto.ttl"), "--reasoner", "none",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 1
    man = read_manifest(out)
    assert man.problems == ["literal_lexical_form: 1 violations (1 triples quarantined)"]
    assert man.extra["validation"]["clean"] is False
    # Each problem printed once, on stderr; the report is still written and named.
    assert cap.err.count("kgllm: problem: literal_lexical_form") == 1 and "problem:" not in cap.out
    assert f"report: {out / 'report.md'}" in cap.out
    assert "**Result: problems found**" in (out / "report.md").read_text()
    # Clean data: exit 0, no problems recorded.
    assert main(["validate", str(files / "good"), "--ontology", str(files / "onto.ttl"), "--reasoner", "none",
                 "--out", str(files / "v0")]) == 0
    assert read_manifest(files / "v0").problems == []


def test_validate_problems_reach_kgllm_run(files, capsys):
    (files / "pipe.yaml").write_text(
        f"workdir: runs\nsteps:\n  - id: clean\n    stage: validate\n    inputs: [{files / 'bad'}]\n"
        f"    config: {{ontology: [onto.ttl], reasoner: none}}\n")
    rc = main(["run", str(files / "pipe.yaml")])
    cap = capsys.readouterr()
    assert rc == 1
    assert read_manifest(files / "runs" / "clean").problems
    assert "literal_lexical_form" in cap.err


def test_validate_empty_ontology_is_an_input_error(files, capsys):
    (files / "empty.ttl").write_text("# nothing here\n")
    rc = main(["validate", str(files / "good"), "--ontology", str(files / "empty.ttl"), "--reasoner", "none",
               "--out", str(files / "v")])
    assert rc == 2
    msg = last_error(capsys)
    assert str(files / "empty.ttl") in msg and "no triples" in msg
    assert not (files / "v").exists()
    # Triples but no class or property: the same, naming the file.
    (files / "labels.nt").write_text(f'<{EX}Thing> {RDFS_LABEL} "thing" .\n')
    assert main(["validate", str(files / "good"), "--ontology", str(files / "labels.nt"), "--reasoner", "none",
                 "--out", str(files / "v")]) == 2
    msg = last_error(capsys)
    assert str(files / "labels.nt") in msg and "no classes or properties" in msg
    assert not (files / "v").exists()


def test_validate_checks_every_input_path_first(files, capsys, monkeypatch):
    import kgllm.validate.stage as stage

    def must_not_run(*a, **k):
        raise AssertionError("reasoning or data checks ran before the inputs were checked")

    monkeypatch.setattr(stage, "reason", must_not_run)
    monkeypatch.setattr(stage, "run_data_checks", must_not_run)
    onto = str(files / "onto.ttl")
    rc = main(["validate", str(files / "good"), "--ontology", onto, "--shapes", str(files / "nope.ttl"),
               "--out", str(files / "v")])
    assert rc == 2
    msg = last_error(capsys)
    assert msg == f"kgllm: error: {files / 'nope.ttl'}: shapes file does not exist"
    # A missing ontology is named as one; a missing graph comes first.
    assert main(["validate", str(files / "good"), "--ontology", str(files / "no.owl"), "--out", str(files / "v")]) == 2
    assert last_error(capsys) == f"kgllm: error: {files / 'no.owl'}: ontology file does not exist"
    assert main(["validate", str(files / "nograph"), "--ontology", str(files / "no.owl"),
                 "--out", str(files / "v")]) == 2
    assert "nograph" in last_error(capsys)
    # A shapes file that does not parse fails before the checks too.
    (files / "broken.ttl").write_text("@prefix : <http://x/> .\n:a :b \n")
    assert main(["validate", str(files / "good"), "--ontology", onto, "--shapes", str(files / "broken.ttl"),
                 "--out", str(files / "v")]) == 2
    assert "broken.ttl" in last_error(capsys)
    assert not (files / "v").exists()


def test_validate_empty_graph_is_an_empty_result(files, capsys):
    g = empty_graph(files)
    rc = main(["validate", str(g), "--ontology", str(files / "onto.ttl"), "--reasoner", "none",
               "--out", str(files / "v")])
    assert rc == 1
    assert last_error(capsys) == f"kgllm: error: {g}: the graph holds no triples; nothing to validate " \
                                 "(check the pull that wrote it)"
    assert not (files / "v").exists()


# ----------------------------------------------------------------------------- corpus, eval questions


def test_corpus_and_questions_on_an_empty_graph(files, capsys):
    g = empty_graph(files)
    assert main(["corpus", str(g), "--out", str(files / "c")]) == 1
    msg = last_error(capsys)
    assert str(g) in msg and "no triples" in msg
    assert not (files / "c").exists()
    assert main(["eval", "questions", str(g), "--out", str(files / "q.jsonl")]) == 1
    msg = last_error(capsys)
    assert str(g) in msg and "no triples" in msg
    assert not (files / "q.jsonl").exists()


def test_corpus_prints_its_counts_once(files, capsys):
    assert main(["corpus", str(files / "good"), "--out", str(files / "c")]) == 0
    cap = capsys.readouterr()
    assert (cap.out + cap.err).count("pretrain_rows") == 1
    assert "corpus artifact: " in cap.out


# ----------------------------------------------------------------------------- one-line errors, exit 2


def test_verbalize_bad_paths(files, capsys):
    assert main(["verbalize", "--jsonl", str(files / "nope.jsonl"), "--out", str(files / "o.jsonl")]) == 2
    assert last_error(capsys) == f"kgllm: error: --jsonl {files / 'nope.jsonl'}: input file does not exist"
    (files / "in.jsonl").write_text(json.dumps({"id": 1, "triples": [["Alan_Bean", "birthPlace", "Texas"]]}) + "\n")
    (files / "SOMEDIR").mkdir()
    assert main(["verbalize", "--jsonl", str(files / "in.jsonl"), "--out", str(files / "SOMEDIR")]) == 2
    assert "SOMEDIR: is a directory" in last_error(capsys)
    assert main(["verbalize", "--jsonl", str(files / "in.jsonl"), "--out", str(files / "o.jsonl")]) == 0
    assert json.loads((files / "o.jsonl").read_text())["text"]


def test_eval_questions_out_is_a_directory(files, capsys):
    (files / "SOMEDIR").mkdir()
    assert main(["eval", "questions", str(files / "good"), "--out", str(files / "SOMEDIR")]) == 2
    assert "SOMEDIR: is a directory" in last_error(capsys)
    assert main(["eval", "questions", str(files / "good"), "--holdout", "0", "--out", str(files / "q.jsonl")]) == 2
    assert "--holdout" in last_error(capsys)


@pytest.mark.parametrize("flags,expected", [
    (["--port", "99999"], "--port 99999: must be a port number from 1 to 65535"),
    (["--port", "-1"], "--port -1: must be a port number from 1 to 65535"),
    (["--rate", "-5"], "--rate -5: must be at least 1"),
    (["--rate", "0"], "--rate 0: must be at least 1"),
])
def test_serve_bad_port_or_rate(tmp_path, capsys, flags, expected):
    # The index does not exist: the flags are checked before it would load.
    assert main(["serve", "--index", str(tmp_path / "no-index"), *flags]) == 2
    assert expected in last_error(capsys)


def test_serve_port_in_use_is_a_usage_error():
    from kgllm.ask.serve import make_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            make_server(None, "127.0.0.1", port)


def test_corpus_config_range_fails_at_load(files, capsys):
    assert main(["corpus", str(files / "good"), "--set", "dedup.threshold=2", "--out", str(files / "c")]) == 2
    assert last_error(capsys) == "kgllm: error: corpus: dedup.threshold must be in (0, 1) (a Jaccard similarity), " \
                                 "got 2.0"
    assert not (files / "c").exists()
    # A threshold MinHash LSH cannot reach with these permutations: a config error before any work.
    assert main(["corpus", str(files / "good"), "--set", "dedup.threshold=0.99", "--out", str(files / "c")]) == 2
    assert "dedup.num_perm" in last_error(capsys)
    assert not (files / "c").exists()


@pytest.mark.parametrize("stage,overrides,key", [
    ("validate", {"max_examples": -1}, "max_examples"),
    ("corpus", {"split": {"test": 1.5}}, "split.test"),
    ("corpus", {"split": {"validation": 0.5, "test": 0.5}}, "split.validation + split.test"),
    ("corpus", {"dedup": {"num_perm": 1}}, "dedup.num_perm"),
    ("index", {"vector": {"batch_size": 0}}, "vector.batch_size"),
    ("index", {"linker": {"min_fuzzy_ratio": 1.5}}, "linker.min_fuzzy_ratio"),
    ("embed", {"lr": 0}, "lr"),
    ("embed", {"split": [0.5, 0.5]}, "split"),
    ("train.sft", {"batch_size": 0}, "batch_size"),
    ("train.sft", {"lora": {"dropout": 1.5}}, "lora.dropout"),
    ("train.pretrain", {"scratch": {"hidden_size": 100, "num_heads": 3}}, "scratch.hidden_size"),
    ("train.dpo", {"beta": 0}, "beta"),
    ("train.reward", {"max_steps": -3}, "max_steps"),
    ("eval.qa", {"limit": -1}, "limit"),
    ("eval.qa", {"retrievers": ["oracle"]}, "retrievers"),
])
def test_config_ranges(stage, overrides, key):
    from kgllm.errors import ConfigError
    from kgllm.registry import get_stage

    with pytest.raises(ConfigError, match=key.replace("+", r"\+")):
        get_stage(stage).make_config(overrides)


def test_config_defaults_pass_their_checks():
    from kgllm.registry import list_stages

    for st in list_stages():
        st.make_config({})


def test_train_config_range_fails_before_reading_the_corpus(tmp_path, capsys):
    assert main(["train", "sft", "--corpus", str(tmp_path / "no-corpus"), "--out", str(tmp_path / "m"),
                 "--set", "lr=-1"]) == 2
    assert last_error(capsys) == "kgllm: error: train.sft: lr must be positive, got -1.0"


# ----------------------------------------------------------------------------- help


def test_eval_help_lists_every_subcommand(capsys):
    from kgllm.cli import build_parser
    from kgllm.eval.cli import GROUP_HELP

    parser = build_parser()
    group = next(a for a in parser._subparsers._group_actions[0].choices["eval"]._actions
                 if a.__class__.__name__ == "_SubParsersAction")
    names = sorted(group.choices)
    assert {"facts", "qa", "questions", "webnlg"} <= set(names)
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[2] == GROUP_HELP
    for name in names:
        assert name in GROUP_HELP
    with pytest.raises(SystemExit):
        main(["--help"])
    assert GROUP_HELP in " ".join(capsys.readouterr().out.split())
