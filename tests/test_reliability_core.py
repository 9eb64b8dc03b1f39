"""Reliability of the core: kgllm never replaces what it did not write, pipelines are checked whole before
they run and exit with the worst code of their steps, and the CLI's help and errors are one line each.

Every data-loss test runs the user's exact command and then checks the user's files byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import cli_error

from kgllm import registry
from kgllm.artifacts import ArtifactWriter, read_manifest
from kgllm.cli import main

GOOD_NT = "<http://example.org/a> <http://example.org/p> <http://example.org/b> .\n"


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256), and every directory (-> "dir")."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def user_dir(here):
    """A working directory with a good N-Triples file, as a user would have."""
    (here / "good.nt").write_text(GOOD_NT)
    return here


_err = cli_error


# ----------------------------------------------------------------------------- data loss


def test_out_onto_a_user_directory_is_refused_and_untouched(user_dir, capsys):
    (user_dir / "precious").mkdir()
    (user_dir / "precious" / "notes.txt").write_text("important\n")
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", "precious"]) == 2
    line = _err(capsys)
    assert "precious: is a directory that is not a kgllm artifact" in line and "notes.txt" in line
    assert _snapshot(user_dir) == before
    # --force never replaces a directory kgllm did not write.
    assert main(["pull", "file", "good.nt", "--out", "precious", "--force"]) == 2
    assert _snapshot(user_dir) == before


def test_out_onto_a_whole_tree_is_refused_and_untouched(user_dir, capsys):
    src = user_dir / "home_like" / "projects" / "src"
    src.mkdir(parents=True)
    (src / "main.py").write_text("print('hello')\n")
    (user_dir / "home_like" / ".bashrc").write_text("export X=1\n")
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", "home_like"]) == 2
    assert "not a kgllm artifact" in _err(capsys)
    assert _snapshot(user_dir) == before


def test_out_onto_a_file_is_refused_and_the_file_stays(user_dir, capsys):
    (user_dir / "afile.txt").write_text("mine\n")
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", "afile.txt"]) == 2
    assert "afile.txt: is a file" in _err(capsys)
    assert _snapshot(user_dir) == before  # no .afile.txt.old-PID either
    assert main(["pull", "file", "good.nt", "--out", "afile.txt"]) == 2
    assert _snapshot(user_dir) == before


def test_empty_out_and_the_working_directory_are_refused(user_dir, capsys):
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", ""]) == 2
    assert "working directory" in _err(capsys)
    assert main(["pull", "file", "good.nt", "--out", "."]) == 2
    assert main(["pull", "file", "good.nt", "--out", ".."]) == 2
    assert _snapshot(user_dir) == before


def test_rerun_onto_its_own_artifact_and_into_an_empty_directory(user_dir, capsys):
    (user_dir / "empty").mkdir()
    assert main(["pull", "file", "good.nt", "--out", "empty"]) == 0
    assert read_manifest(user_dir / "empty").counts["triples"] == 1
    (user_dir / "good.nt").write_text(GOOD_NT + GOOD_NT.replace("/b>", "/c>"))
    assert main(["pull", "file", "good.nt", "--out", "empty"]) == 0
    assert read_manifest(user_dir / "empty").counts["triples"] == 2
    assert sorted(p.name for p in user_dir.iterdir()) == ["empty", "good.nt"]  # no temp or old dirs left


def test_other_kind_needs_force_and_a_broken_manifest_is_foreign(user_dir, capsys):
    with ArtifactWriter(user_dir / "c", "corpus") as w:
        (w.path / "x.txt").write_text("x")
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", "c"]) == 2
    line = _err(capsys)
    assert "holds a kgllm 'corpus' artifact" in line and "--force" in line
    assert _snapshot(user_dir) == before
    assert main(["pull", "file", "good.nt", "--out", "c", "--force"]) == 0
    assert read_manifest(user_dir / "c").kind == "graph"
    # A manifest.json that is not kgllm's (no known kind) does not make a directory kgllm's.
    (user_dir / "fake").mkdir()
    (user_dir / "fake" / "manifest.json").write_text(json.dumps({"name": "my-npm-package"}))
    (user_dir / "fake" / "index.js").write_text("1;\n")
    before = _snapshot(user_dir)
    assert main(["pull", "file", "good.nt", "--out", "fake", "--force"]) == 2
    assert _snapshot(user_dir) == before


def test_only_kgllm_debris_is_removed_beside_the_output(user_dir):
    (user_dir / ".g.backup-2024").write_text("a user's backup\n")
    (user_dir / ".g.tmp-notes").write_text("not a pid\n")
    dead = user_dir / ".g.tmp-999999999"
    dead.mkdir()
    (dead / "part").write_text("debris")
    assert main(["pull", "file", "good.nt", "--out", "g"]) == 0
    assert (user_dir / ".g.backup-2024").read_text() == "a user's backup\n"
    assert (user_dir / ".g.tmp-notes").exists()
    assert not dead.exists()


def test_pipeline_step_id_that_is_a_path_is_refused_at_load(user_dir, capsys):
    (user_dir / "victim").mkdir()
    (user_dir / "victim" / "thesis.tex").write_text("\\documentclass{article}\n")
    for bad in ("../victim", "a/b", "..", "", "/abs"):
        (user_dir / "p.yaml").write_text(
            f"workdir: work\nsteps:\n  - id: {json.dumps(bad)}\n    stage: pull.file\n    config: {{paths: [good.nt]}}\n")
        before = _snapshot(user_dir)
        assert main(["run", "p.yaml"]) == 2, bad
        assert "must be a name" in _err(capsys)
        assert main(["run", "p.yaml", "--dry-run"]) == 2
        assert "must be a name" in _err(capsys)
        assert _snapshot(user_dir) == before


def test_pipeline_refuses_a_foreign_directory_at_a_step_output_before_running(user_dir, capsys):
    (user_dir / "work" / "second").mkdir(parents=True)
    (user_dir / "work" / "second" / "data.csv").write_text("1,2\n")
    (user_dir / "p.yaml").write_text(
        "workdir: work\nsteps:\n"
        "  - {id: first, stage: pull.file, config: {paths: [good.nt]}}\n"
        "  - {id: second, stage: pull.file, config: {paths: [good.nt]}}\n")
    before = _snapshot(user_dir)
    assert main(["run", "p.yaml"]) == 2
    assert "step second (pull.file)" in _err(capsys)
    assert _snapshot(user_dir) == before  # the first step did not run either


# ----------------------------------------------------------------------------- pipelines checked whole


BROKEN = {
    "cycle": ("steps:\n  - {id: a, stage: validate, inputs: [b], config: {ontology: [o.ttl]}}\n"
              "  - {id: b, stage: validate, inputs: [a], config: {ontology: [o.ttl]}}\n", "step a (validate)",
              "comes later"),
    "self": ("steps:\n  - {id: a, stage: validate, inputs: [a], config: {ontology: [o.ttl]}}\n",
             "step a (validate)", "its own output"),
    "unknown input": ("steps:\n  - {id: g, stage: pull.file, config: {paths: [good.nt]}}\n"
                      "  - {id: v, stage: validate, inputs: [gg], config: {ontology: [o.ttl]}}\n",
                      "step v (validate)", "did you mean step 'g'"),
    "missing paths": ("steps:\n  - {id: g, stage: pull.file}\n", "step g (pull.file)", "'paths' is required"),
    "missing file": ("steps:\n  - {id: g, stage: pull.file, config: {paths: [nope.nt]}}\n", "step g (pull.file)",
                     "does not exist"),
    "no inputs": ("steps:\n  - {id: v, stage: validate, config: {ontology: [o.ttl]}}\n", "step v (validate)",
                  "input"),
    "no id": ("steps:\n  - {stage: pull.file, config: {paths: [good.nt]}}\n", "steps[0]", "missing 'id'"),
    "empty file": ("", "p.yaml", "no steps"),
    "no steps": ("steps: []\n", "p.yaml", "no steps"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_dry_run_finds_every_broken_wiring(user_dir, capsys, case):
    text, where, what = BROKEN[case]
    (user_dir / "o.ttl").write_text("<http://example.org/C> a <http://www.w3.org/2002/07/owl#Class> .\n")
    (user_dir / "p.yaml").write_text(("workdir: work\n" if text else "") + text)
    before = _snapshot(user_dir)
    for argv in (["run", "p.yaml", "--dry-run"], ["run", "p.yaml"]):
        assert main(argv) == 2, (case, argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kgllm: error:"), err
        assert where in err[0] and what in err[0], err[0]
    assert _snapshot(user_dir) == before


@pytest.mark.parametrize("flag", ["--only", "--force"])
def test_unknown_step_names_in_only_and_force(user_dir, capsys, flag):
    (user_dir / "p.yaml").write_text("workdir: work\nsteps:\n  - {id: graph, stage: pull.file, config: {paths: [good.nt]}}\n")
    assert main(["run", "p.yaml", flag, "grap", "--dry-run"]) == 2
    assert f"{flag} grap: no such step (did you mean 'graph'?)" in _err(capsys)


def test_dry_run_prints_output_status_and_yaml_config(user_dir, capsys):
    (user_dir / "p.yaml").write_text("workdir: work\nsteps:\n  - {id: graph, stage: pull.file, config: {paths: [good.nt]}}\n")
    assert main(["run", "p.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"graph (pull.file): would run -> {user_dir / 'work' / 'graph'}" in out
    assert "  config:\n    paths:\n    - " in out and "skip_bad: false" in out
    assert not (user_dir / "work").exists()
    assert main(["run", "p.yaml"]) == 0
    capsys.readouterr()
    assert main(["run", "p.yaml", "--dry-run"]) == 0
    assert "graph (pull.file): up to date" in capsys.readouterr().out


def test_run_and_config_given_a_directory(user_dir, capsys):
    assert main(["run", str(user_dir)]) == 2
    assert "is a directory; give a YAML file" in _err(capsys)
    assert main(["pull", "file", "good.nt", "--out", "g", "--config", str(user_dir)]) == 2
    assert "is a directory; give a YAML file" in _err(capsys)


def _problem_stage(inputs, out, cfg, *, pipeline_key=None):
    with ArtifactWriter(out, "graph", config=cfg, inputs=inputs, pipeline_key=pipeline_key) as w:
        (w.path / "x.txt").write_text("x")
        w.counts["checked"] = 1
        w.problems.append("3 triples quarantined (see report.md)")
    return w.manifest


def test_pipeline_exits_with_the_worst_step_code_and_lists_problems(user_dir, capsys, monkeypatch):
    from dataclasses import dataclass

    @dataclass
    class NoConfig:
        pass

    reg = dict(registry._registry())
    reg["test.problems"] = registry.Stage("test.problems", NoConfig, f"{__name__}:_problem_stage", "graph", min_inputs=1)
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    (user_dir / "p.yaml").write_text(
        "workdir: work\nsteps:\n  - {id: g, stage: pull.file, config: {paths: [good.nt]}}\n"
        "  - {id: check, stage: test.problems, inputs: [g]}\n")
    assert main(["run", "p.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "Problems:\n  check: 3 triples quarantined (see report.md)" in out
    assert "kgllm: problem: step check: 3 triples quarantined" in err
    # Skipped (up to date) steps keep reporting their problems.
    assert main(["run", "p.yaml"]) == 1
    assert "check        test.problems  skipped" in capsys.readouterr().out


# ----------------------------------------------------------------------------- help and output


def test_misspelled_flag_suggests_the_right_one(user_dir, capsys):
    assert main(["pull", "file", "good.nt", "--out", "g", "--skipbad"]) == 2
    assert _err(capsys) == ("kgllm: error: kgllm pull file: unrecognized arguments: --skipbad "
                            "(did you mean --skip-bad?)")


def test_set_help_example_is_a_key_of_each_commands_own_stage(capsys):
    from kgllm.commands import set_example

    for st in registry.list_stages():
        key, _, value = set_example(st.name).partition("=")
        node = st.make_config({})
        for part in key.split("."):
            node = getattr(node, part)  # raises if the example names a key the stage does not have
        st.make_config(_nested(key, value))  # and its value is valid for it
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert f"e.g. --set {set_example('validate')}" in " ".join(out.split())
    assert "split.seed" not in out  # a corpus key, which validate does not have


def _nested(key: str, value: str) -> dict:
    import yaml

    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(value)
    return out


def test_stages_shows_one_stage_with_types_and_defaults(capsys):
    assert main(["stages", "validate"]) == 0
    out = capsys.readouterr().out
    assert "java_heap_mb" in out and "int" in out and "default: 2000" in out
    assert main(["stages", "nope"]) == 2


def test_progress_bars_only_on_a_terminal(monkeypatch):
    from kgllm import log

    class Tty:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

        def write(self, s):
            return len(s)

        def flush(self):
            pass

    monkeypatch.delenv("KGLLM_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", Tty(False))
    assert not log.progress_enabled()
    monkeypatch.setattr("sys.stderr", Tty(True))
    assert log.progress_enabled()
    monkeypatch.setenv("KGLLM_PROGRESS", "0")
    assert not log.progress_enabled()
    monkeypatch.setenv("KGLLM_PROGRESS", "1")
    monkeypatch.setattr("sys.stderr", Tty(False))
    assert log.progress_enabled()
    monkeypatch.delenv("KGLLM_PROGRESS")
    monkeypatch.setattr("sys.stderr", Tty(True))
    log.setup_logging(0, quiet=True)
    try:
        assert not log.progress_enabled()
    finally:
        log.setup_logging(0)


def test_quiet_hides_info_lines(user_dir, capsys):
    assert main(["-q", "pull", "file", "good.nt", "--out", "g"]) == 0
    assert " INFO " not in capsys.readouterr().err
    assert main(["pull", "file", "good.nt", "--out", "g"]) == 0
    assert " INFO " in capsys.readouterr().err


def test_library_progress_bars_follow_the_same_rule(tmp_path):
    """transformers' "Loading weights" bar must not run into log lines written to a file."""
    import subprocess
    import sys

    (tmp_path / "good.nt").write_text(GOOD_NT)
    env = {k: v for k, v in os.environ.items() if k not in ("KGLLM_PROGRESS", "HF_HUB_DISABLE_PROGRESS_BARS")}
    r = subprocess.run([sys.executable, "-m", "kgllm", "pull", "file", "good.nt", "--out", "g"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "kgllm", "index", "g", "--out", "i"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Loading weights" not in r.stderr and "it/s]" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stopped_stage_leaves_no_temp_directory(tmp_path, sig, code):
    """SIGTERM (schedulers, `timeout`) and Ctrl-C mid-write: exit 128+signal, the temp directory removed."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "KGLLM_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "kgllm", "pull", "wordnet", "--out", "wn"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".wn.tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the pull ended before it could be stopped"
    time.sleep(0.5)  # well inside the write (all of WordNet takes tens of seconds)
    proc.send_signal(getattr(signal, sig))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1] == ("kgllm: terminated" if sig == "SIGTERM" else "kgllm: interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a stopped stage left files behind"
