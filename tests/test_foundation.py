"""Foundation: manifests and hashing, atomic writes under a killed process, config precedence, pipeline
skipping and --force, CLI behaviour (one-line errors, light imports)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import kgllm
from kgllm import artifacts, config, registry
from kgllm.artifacts import ArtifactWriter, read_manifest, sha256_file, verify_artifact
from kgllm.cli import main
from kgllm.errors import ArtifactError, ConfigError

ROOT = Path(__file__).resolve().parent.parent
artifacts.register_kind("demo")  # the kind the writer tests below write


# ----------------------------------------------------------------------------- a small real stage for tests


@dataclass
class Inner:
    depth: int = 1
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class CountConfig:
    """Counts lines of its inputs' text files and writes ``factor`` copies of the total."""

    factor: int = 1
    label: str = "default"
    source: Path | None = None
    inner: Inner = field(default_factory=Inner)


RUNS: list[str] = []


def run_count(inputs, out, cfg: CountConfig, *, pipeline_key=None):
    RUNS.append(out.name)
    total = 0
    for d in inputs:
        total += int((d / "total.txt").read_text()) if (d / "total.txt").exists() else 0
    if cfg.source is not None:
        total += len(cfg.source.read_text().splitlines())
    with ArtifactWriter(out, "count", config=cfg, inputs=inputs, pipeline_key=pipeline_key) as w:
        (w.path / "total.txt").write_text(str(total * cfg.factor))
        w.counts["total"] = total * cfg.factor
    return w.manifest


@pytest.fixture
def count_stage(monkeypatch):
    reg = dict(registry._registry())
    reg["test.count"] = registry.Stage("test.count", CountConfig, f"{__name__}:run_count", "count",
                                     help="count lines", min_inputs=0)
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    RUNS.clear()
    return reg["test.count"]


# ----------------------------------------------------------------------------- manifests and hashing


def test_manifest_records_inputs_config_counts_files(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\ny\n")
    with ArtifactWriter(tmp_path / "a", "demo", config={"k": 1, "n": [1, 2]}, inputs=[src]) as w:
        (w.path / "sub").mkdir()
        (w.path / "sub" / "data.txt").write_text("hello")
        w.counts["items"] = 1
    man = read_manifest(tmp_path / "a", "demo")
    assert man.kind == "demo" and man.schema_version == artifacts.SCHEMA_VERSION
    assert man.inputs == [{"path": str(src), "sha256": sha256_file(src)}]
    assert man.config == {"k": 1, "n": [1, 2]}
    assert man.config_sha256 == artifacts.sha256_json({"n": [1, 2], "k": 1})  # key order does not matter
    assert man.counts == {"items": 1}
    assert man.files == [{"path": "sub/data.txt", "sha256": sha256_file(tmp_path / "a/sub/data.txt"), "bytes": 5}]
    assert "rdflib" in man.versions and man.wall_time_s >= 0 and man.created
    # An artifact used as input is identified by its content hash, stable across rewrites of equal content.
    with ArtifactWriter(tmp_path / "b", "demo", inputs=[tmp_path / "a"]) as w:
        pass
    b = read_manifest(tmp_path / "b")
    assert b.inputs[0]["sha256"] == man.content_sha256 and b.inputs[0]["kind"] == "demo"


def test_content_hash_is_deterministic_and_verify_detects_tampering(tmp_path):
    for name in ("x", "y"):
        with ArtifactWriter(tmp_path / name, "demo", config={"a": 1}) as w:
            (w.path / "f.txt").write_text("same")
    assert read_manifest(tmp_path / "x").content_sha256 == read_manifest(tmp_path / "y").content_sha256
    verify_artifact(tmp_path / "x")
    (tmp_path / "x" / "f.txt").write_text("changed")
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        verify_artifact(tmp_path / "x")


def test_read_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        read_manifest(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        read_manifest(tmp_path / "half")
    with ArtifactWriter(tmp_path / "g", "graph"):
        pass
    with pytest.raises(ArtifactError, match="expected a 'corpus' artifact, found 'graph'"):
        read_manifest(tmp_path / "g", "corpus")


def test_iter_jsonl_numbers_lines_and_names_bad_ones(tmp_path):
    from kgllm.errors import InputError

    f = tmp_path / "rows.jsonl"
    f.write_text('{"a": 1}\n\n  \n{"a": 2}\n', encoding="utf-8")
    assert list(artifacts.iter_jsonl(f)) == [(1, {"a": 1}), (4, {"a": 2})]
    f.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"rows\.jsonl:2: invalid JSON .*; try again"):
        list(artifacts.iter_jsonl(f, hint="; try again"))
    for line, kind in (("[1, 2]", "an array"), ('"text"', "a string"), ("3", "a number"), ("null", "null")):
        f.write_text('{"a": 1}\n\n' + line + "\n", encoding="utf-8")
        with pytest.raises(InputError, match=rf"rows\.jsonl:3: expected a JSON object, found {kind}"):
            list(artifacts.iter_jsonl(f))
    with pytest.raises(InputError, match=r"nope\.jsonl: cannot read"):
        list(artifacts.iter_jsonl(tmp_path / "nope.jsonl"))


def test_jsonl_gz_is_the_same_bytes_however_it_is_batched(tmp_path, monkeypatch):
    """write_jsonl: one JSON object per line (UTF-8 as is, sets and paths through the default hook), gzip at
    GZIP_LEVEL with no name and mtime 0, so the bytes do not depend on the run or on how lines are batched."""
    import gzip

    rows = [{"i": i, "label": f"Zürich {i}", "tags": {"b", f"a{i}"}, "path": Path("x") / str(i)} for i in range(3000)]
    text = "".join(json.dumps({**r, "tags": sorted(r["tags"]), "path": str(r["path"])}, ensure_ascii=False) + "\n"
                   for r in rows)
    assert artifacts.write_jsonl(tmp_path / "a.jsonl.gz", rows) == 3000
    monkeypatch.setattr(artifacts, "_JSONL_BATCH", 100)   # a batch every few lines
    assert artifacts.write_jsonl(tmp_path / "b.jsonl.gz", iter(rows)) == 3000
    a, b = (tmp_path / "a.jsonl.gz").read_bytes(), (tmp_path / "b.jsonl.gz").read_bytes()
    assert gzip.decompress(a).decode() == text
    assert a == b
    # The deflate stream and trailer of gzip.compress at that level (its header names another OS byte).
    assert a[10:] == gzip.compress(text.encode(), compresslevel=artifacts.GZIP_LEVEL, mtime=0)[10:]
    assert artifacts.write_jsonl(tmp_path / "c.jsonl", rows) == 3000
    assert (tmp_path / "c.jsonl").read_text("utf-8") == text


def test_failed_stage_leaves_previous_artifact_untouched(tmp_path):
    with ArtifactWriter(tmp_path / "a", "demo") as w:
        (w.path / "v.txt").write_text("1")
    with pytest.raises(RuntimeError), ArtifactWriter(tmp_path / "a", "demo") as w:
        (w.path / "v.txt").write_text("2")
        raise RuntimeError("stage failed")
    assert (tmp_path / "a" / "v.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


# ----------------------------------------------------------------------------- crash safety (real SIGKILL)

_CRASHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from kgllm.artifacts import ArtifactWriter, atomic_open, register_kind
    register_kind("demo")
    out, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "dir":
        with ArtifactWriter(out, "demo") as w:
            (w.path / "v.txt").write_text("partial")
            Path(sys.argv[3]).write_text("started")
            time.sleep(60)
    else:
        with atomic_open(out) as f:
            f.write("partial" * 1000)
            f.flush()
            Path(sys.argv[3]).write_text("started")
            time.sleep(60)
""")


def _start_and_kill(tmp_path, out, mode):
    flag = tmp_path / f"started-{mode}"
    proc = subprocess.Popen([sys.executable, "-c", _CRASHER, str(out), mode, str(flag)])
    deadline = time.time() + 60
    while not flag.exists():
        assert proc.poll() is None, "writer process exited early"
        assert time.time() < deadline, "writer never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid


def test_killed_writer_leaves_no_accepted_artifact(tmp_path):
    out = tmp_path / "art"
    _start_and_kill(tmp_path, out, "dir")
    assert not out.exists()
    with pytest.raises(ArtifactError):
        read_manifest(out)
    stale = list(tmp_path.glob(".art.tmp-*"))
    assert stale, "the killed writer's temp dir should be visible as debris"
    # The next writer cleans the debris of the dead process and succeeds.
    with ArtifactWriter(out, "demo") as w:
        (w.path / "v.txt").write_text("done")
    assert read_manifest(out).kind == "demo"
    assert not list(tmp_path.glob(".art.*"))


def test_killed_writer_keeps_the_older_artifact_and_file(tmp_path):
    out = tmp_path / "art"
    with ArtifactWriter(out, "demo") as w:
        (w.path / "v.txt").write_text("old")
    _start_and_kill(tmp_path, out, "dir")
    assert (out / "v.txt").read_text() == "old"
    verify_artifact(out)
    f = tmp_path / "file.json"
    artifacts.atomic_write_json(f, {"v": "old"})
    _start_and_kill(tmp_path, f, "file")
    assert json.loads(f.read_text()) == {"v": "old"}


# ----------------------------------------------------------------------------- config


def test_config_precedence_defaults_yaml_overrides_flags(tmp_path, count_stage):
    import argparse

    from kgllm.commands import stage_config

    y = tmp_path / "c.yaml"
    y.write_text("factor: 2\nlabel: from-yaml\ninner: {depth: 5}\n")
    args = argparse.Namespace(config=y, overrides=["inner.depth=7", "label=from-set"])
    cfg = stage_config("test.count", args, {"label": "from-flag", "factor": None})
    assert cfg.factor == 2            # YAML over default
    assert cfg.inner.depth == 7       # --set over YAML
    assert cfg.label == "from-flag"   # explicit flag over --set
    assert cfg.inner.names == ["a"]   # untouched default
    cfg0 = stage_config("test.count", argparse.Namespace(config=None, overrides=[]), {})
    assert cfg0 == CountConfig()


def test_config_unknown_key_and_bad_type_name_the_key():
    with pytest.raises(ConfigError, match=r"unknown key 'factr' \(did you mean 'factor'\?\); valid keys: factor, "
                                          r"inner, label, source"):
        config.build(CountConfig, {"factr": 2})
    with pytest.raises(ConfigError, match=r"x\.inner\.depth: expected an integer, got 'deep'"):
        config.build(CountConfig, {"inner": {"depth": "deep"}}, source="x")
    with pytest.raises(ConfigError, match=r"inner: unknown key 'width'"):
        config.build(CountConfig, {"inner": {"width": 1}})


def test_config_build_never_mutates_its_inputs():
    layer = {"inner": {"depth": 3}}
    base = config.build(CountConfig, layer)
    config.build(CountConfig, layer, {"inner": {"depth": 4}})
    assert layer == {"inner": {"depth": 3}} and base.inner.depth == 3


# ----------------------------------------------------------------------------- pipeline


def _pipeline(tmp_path, factor=1):
    (tmp_path / "lines.txt").write_text("a\nb\nc\n")
    p = tmp_path / "pipe.yaml"
    p.write_text(textwrap.dedent(f"""
        workdir: work
        steps:
          - id: first
            stage: test.count
            config: {{source: lines.txt, factor: {factor}}}
          - id: second
            stage: test.count
            inputs: [first]
            config: {{factor: 10}}
    """))
    return p


def test_pipeline_runs_then_skips_up_to_date_steps(tmp_path, count_stage, monkeypatch):
    monkeypatch.chdir(ROOT)  # relative paths resolve against the YAML, not the working directory
    p = _pipeline(tmp_path)
    res = kgllm.run_pipeline(p)
    assert [r.status for r in res] == ["ran", "ran"]
    assert (tmp_path / "work/second/total.txt").read_text() == "30"
    assert RUNS == ["first", "second"]
    res = kgllm.run_pipeline(p)
    assert [r.status for r in res] == ["skipped", "skipped"] and RUNS == ["first", "second"]
    # A file named in a step's config is an input too: editing it reruns that step and the one downstream.
    (tmp_path / "lines.txt").write_text("a\nb\n")
    res = kgllm.run_pipeline(p)
    assert [r.status for r in res] == ["ran", "ran"]
    assert (tmp_path / "work/second/total.txt").read_text() == "20"
    res = kgllm.run_pipeline(p, force=["second"])
    assert [r.status for r in res] == ["skipped", "ran"]


def test_pipeline_config_change_and_force_all(tmp_path, count_stage):
    kgllm.run_pipeline(_pipeline(tmp_path))
    RUNS.clear()
    res = kgllm.run_pipeline(_pipeline(tmp_path, factor=2))
    assert [r.status for r in res] == ["ran", "ran"] and RUNS == ["first", "second"]
    RUNS.clear()
    res = kgllm.run_pipeline(_pipeline(tmp_path, factor=2), force=["all"])
    assert RUNS == ["first", "second"]
    # A forced upstream step with identical output leaves downstream up to date.
    RUNS.clear()
    res = kgllm.run_pipeline(_pipeline(tmp_path, factor=2), force=["first"])
    assert [r.status for r in res] == ["ran", "skipped"] and RUNS == ["first"]


def test_pipeline_errors_are_clear(tmp_path, count_stage):
    p = tmp_path / "bad.yaml"
    p.write_text("workdir: w\nsteps:\n  - id: a\n    stage: test.count\n    config: {factr: 2}\n")
    with pytest.raises(ConfigError, match=r"steps\.a\.config: unknown key 'factr'"):
        kgllm.load_pipeline(p).configs()
    p.write_text("workdir: w\nsteps:\n  - id: a\n    stage: nope\n")
    with pytest.raises(kgllm.UsageError, match="unknown stage 'nope'"):
        kgllm.load_pipeline(p)
    p.write_text("workdir: w\nstepz: []\n")
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        kgllm.load_pipeline(p)
    p.write_text("workdir: w\nsteps:\n  - id: a\n    stage: test.count\n    inputs: [b]\n"
                 "  - id: b\n    stage: test.count\n")
    with pytest.raises(ConfigError, match="comes later"):
        kgllm.load_pipeline(p).run()


# ----------------------------------------------------------------------------- CLI


def test_cli_run_unknown_key_is_one_line_exit_2(tmp_path, count_stage, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("workdir: w\nsteps:\n  - id: a\n    stage: test.count\n    config: {factr: 2}\n")
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'factr'" in err[0] and "valid keys: factor" in err[0]


def test_cli_run_prints_artifacts_and_force(tmp_path, count_stage, capsys):
    p = _pipeline(tmp_path)
    assert main(["run", str(p)]) == 0
    out = capsys.readouterr().out
    assert "first" in out and str(tmp_path / "work" / "second") in out and "total=30" in out
    assert main(["run", str(p), "--force", "second"]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "ran" in out
    assert main(["run", str(p), "--force", "nope"]) == 2


def test_cli_help_imports_no_heavy_packages():
    code = ("import sys, contextlib, io\nfrom kgllm.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n    except SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'trl', 'faiss', 'transformers', 'pykeen', 'owlready2') if m in sys.modules]\n"
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
    r = subprocess.run([sys.executable, "-m", "kgllm", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout


def test_cli_unknown_command_is_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_log_handler_follows_stderr_when_it_is_swapped(monkeypatch):
    # The CLI called in-process (tests, notebooks) sets up logging with one stderr, which is later replaced
    # and closed; records must go to the current stderr, never raise "I/O operation on closed file".
    import io
    import logging

    from kgllm.log import logger, setup_logging

    old = io.StringIO()
    monkeypatch.setattr("sys.stderr", old)
    setup_logging(0)
    try:
        logger.info("first record")
        old.close()
        new = io.StringIO()
        monkeypatch.setattr("sys.stderr", new)
        logger.info("second record")
        assert "second record" in new.getvalue() and "Logging error" not in new.getvalue()
    finally:
        logging.getLogger("kgllm").handlers.clear()
        logging.getLogger("kgllm").propagate = True
