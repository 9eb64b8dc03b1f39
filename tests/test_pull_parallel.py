"""``pull file`` on Ray (``--engine ray``): N-Triples/N-Quads files parsed by Ray tasks, an uncompressed file in
byte ranges, give the in-process artifact (same ``content_sha256``, counts, per-file counts, quarantine), and a
malformed line deep in a later range stops the pull with the in-process error, file line number included.

Data: real DBpedia sample lines (language-tagged labels, object properties) mixed with generated ones (blank
nodes shared across ranges, comments, blank lines, CRLF endings, duplicates). One embedded Ray instance serves
the module: the engine uses a Ray session already started in the process, and leaves it running.
"""

from __future__ import annotations

import gzip
import lzma
import sys
import time
from pathlib import Path

import pytest
from conftest import DBPEDIA_SAMPLE

from kgllm import engine
from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.engine import EngineConfig
from kgllm.errors import InputError
from kgllm.pull import files as filesmod
from kgllm.pull.files import QUARANTINE, pull_files

RAY = EngineConfig(mode="ray", num_cpus=2)
LOCAL = EngineConfig(mode="local")
RANGE = 100_000  # bytes: a 65,000-line file is cut at lines 20,001, 40,001 and 60,001 (chunk boundaries)


@pytest.fixture(scope="module")
def ray_session():
    """One embedded Ray instance for the module (its engine stops it and removes its temp directory)."""
    eng = engine.Engine(RAY)
    assert eng.task_slots() == 2  # starts the instance
    try:
        yield
    finally:
        eng.close()


def real_lines() -> list[bytes]:
    return [x for name in ("labels_en.ttl.xz", "mappingbased_objects_en.ttl.xz")
            for x in lzma.decompress((DBPEDIA_SAMPLE / name).read_bytes()).splitlines(keepends=True)
            if x.strip() and not x.startswith(b"#")]


def nt_lines(n: int, seed: int = 0) -> list[bytes]:
    """``n`` N-Triples lines: real ones (repeated: duplicates), generated ones, blank nodes whose first
    appearances are spread over the whole file, comments, blank lines, CRLF endings."""
    real = real_lines()
    out = []
    for i in range(n):
        k = i % 10
        if k == 0:
            out.append(f"# comment {i}\n".encode())
        elif k == 1:
            out.append(b"\n" if i % 20 else b"   \r\n")
        elif k == 2:
            out.append(f'_:n{(i * 7919 + seed) % 3001} <http://example.org/p> "v{i % 977}"@en .\n'.encode())
        elif k == 3:
            out.append(real[(i // 10) % len(real)])
        elif k == 4:
            out.append(f"<http://example.org/e{i}> <http://example.org/knows> _:n{(i * 31) % 2999} .\r\n".encode())
        else:
            out.append(f"<http://example.org/e{i + seed}> <http://example.org/rel{i % 7}> "
                       f"<http://example.org/e{(i * 13) % 5000}> .\n".encode())
    return out


def _pull(paths, out: Path, eng: EngineConfig, **kw):
    with engine.configured(eng):
        return pull_files(paths, out, range_bytes=RANGE, **kw)


def _same(local, ray) -> None:
    assert ray.content_sha256 == local.content_sha256
    assert ray.counts == local.counts
    assert ray.extra["files"] == local.extra["files"]
    assert ray.extra["shards"] == local.extra["shards"]
    assert local.extra["engine"] == {"ran": "local", "mode": "local"}
    assert ray.extra["engine"]["ran"] == "ray"


@pytest.fixture(scope="module")
def big_nt(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("parallel") / "big.nt"
    p.write_bytes(b"\xef\xbb\xbf" + b"".join(nt_lines(65_000)))  # with a byte order mark
    return p


def test_byte_ranges_start_on_chunk_boundaries_with_their_line_numbers(big_nt):
    data = big_nt.read_bytes()
    spans = filesmod._byte_ranges(big_nt, RANGE)
    assert [first for _, _, first in spans] == [1, 20_001, 40_001, 60_001]
    assert spans[0][0] == 3 and spans[-1][1] == len(data)  # after the byte order mark, to the end
    for (_, stop, _), (start, _, first) in zip(spans, spans[1:], strict=False):
        assert stop == start and data[start - 1:start] == b"\n" and data.count(b"\n", 0, start) + 1 == first


def test_one_file_in_byte_ranges_gives_the_in_process_artifact(ray_session, big_nt, tmp_path):
    local = _pull([big_nt], tmp_path / "local", LOCAL)
    ray = _pull([big_nt], tmp_path / "ray", RAY)
    _same(local, ray)
    assert ray.extra["engine"]["parts"] == 4 and ray.extra["engine"]["steps"][0]["tasks"] == 4
    c = local.extra["files"][0]
    assert c["lines"] == 65_000 and c["blank_lines"] == 13_000 and c["duplicates"] > 0
    assert c["statements"] == c["triples"] + c["duplicates"] == c["lines"] - c["blank_lines"]
    verify_artifact(tmp_path / "ray")


def test_skip_bad_quarantines_the_same_lines(ray_session, tmp_path):
    lines = nt_lines(65_000, seed=1)
    bad = {5: b"<http://example.org/a> <http://example.org/b> .\n",          # range 1
           25_006: b"<http://example.org/a> <not an iri> <http://x> .\n",     # range 2
           59_999: b"<http://example.org/a> <http://example.org/b> \"open\n",  # last line of range 3
           64_998: b"<http://example.org/a> <http://example.org/b>\n"}         # range 4
    for i, line in bad.items():
        lines[i] = line
    p = tmp_path / "bad.nt"
    p.write_bytes(b"".join(lines))
    local = _pull([p], tmp_path / "local", LOCAL, config=filesmod.FilePullConfig(skip_bad=True))
    ray = _pull([p], tmp_path / "ray", RAY, config=filesmod.FilePullConfig(skip_bad=True))
    _same(local, ray)
    assert local.counts["bad_lines"] == 4
    assert (tmp_path / "ray" / QUARANTINE).read_bytes() == (tmp_path / "local" / QUARANTINE).read_bytes()


def test_gz_plain_quads_and_turtle_files_give_the_in_process_artifact(ray_session, big_nt, tmp_path):
    gz = tmp_path / "first.nt.gz"
    gz.write_bytes(gzip.compress(b"".join(nt_lines(30_000, seed=2)), mtime=0))
    nq = tmp_path / "quads.nq"
    nq.write_bytes(b"<http://example.org/a> <http://example.org/b> <http://example.org/c> <http://example.org/g> .\n"
                   b"<http://example.org/a> <http://example.org/b> _:q .\n"
                   b"_:n5 <http://example.org/b> \"x\" <http://example.org/g> .\n")
    ttl = tmp_path / "onto.ttl"
    ttl.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b [ ex:c ex:d ] .\n")
    paths = [gz, big_nt, ttl, nq]
    local = _pull(paths, tmp_path / "local", LOCAL)
    ray = _pull(paths, tmp_path / "ray", RAY)
    _same(local, ray)
    assert ray.extra["engine"]["parts"] == 1 + 4 + 1   # the .gz whole, the plain file in 4 ranges, the .nq
    assert local.counts["named_graph_quads"] == 2 and len(local.extra["shards"]) == 4


def test_a_malformed_line_in_a_later_range_is_the_in_process_error(ray_session, tmp_path):
    lines = nt_lines(65_000, seed=3)
    lines[52_344] = b'<http://example.org/a> <http://example.org/b> "unterminated .\n'  # line 52,345: range 3
    lines[61_000] = b"<http://example.org/a> <b c> <http://x> .\n"                    # a later one: not reached
    p = tmp_path / "bad.nt"
    p.write_bytes(b"".join(lines))
    errors = []
    for name, eng in (("local", LOCAL), ("ray", RAY)):
        with pytest.raises(InputError) as e:
            _pull([p], tmp_path / name, eng)
        errors.append(str(e.value))
        assert not (tmp_path / name).exists()
    assert not [x.name for x in tmp_path.iterdir() if x.name.startswith(".")]  # no temp dir, no spill files
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{p}:52345:") and "malformed ntriples" in errors[0]


def test_a_step_stopped_early_cancels_its_tasks_on_a_session_it_does_not_own(ray_session, tmp_path):
    """The module's Ray session is the caller's (as a user's notebook or a shared cluster): it stays up after
    the step, so tasks left running would write after the caller cleaned up (a pull's error removes its
    spill directory). Closing the step's results cancels them and waits for them."""
    def slow(_shared, i):   # defined here: Ray pickles it by value, the workers need not import this module
        if i:
            time.sleep(3)
            (tmp_path / f"{i}.done").write_text("written after the step stopped")
        return i

    eng = engine.Engine(RAY)
    try:
        results = eng.map_tasks(slow, list(range(3)), desc="test")
        assert next(results) == (0, 0)   # the one that does not sleep; the other two are running
        results.close()
        time.sleep(4)
        assert not list(tmp_path.glob("*.done"))
        # The session is still up and runs the next step.
        assert sorted(eng.map_tasks(slow, [0, 0], desc="test")) == [(0, 0), (1, 0)]
    finally:
        eng.close()


def test_cli_engine_ray(ray_session, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    gz = tmp_path / "a.nt.gz"
    gz.write_bytes(gzip.compress(b"".join(nt_lines(2_000, seed=4)), mtime=0))
    plain = tmp_path / "b.nt"
    plain.write_bytes(b"".join(nt_lines(3_000, seed=5)))
    assert main(["pull", "file", str(gz), str(plain), "--out", str(tmp_path / "local"), "--engine", "local"]) == 0
    assert main(["pull", "file", str(gz), str(plain), "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    local, ray = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "ray")
    _same(local, ray)
    assert ray.extra["engine"]["parts"] == 2
    # The default (auto, no address) stays in this process, whatever the size.
    assert main(["pull", "file", str(gz), str(plain), "--out", str(tmp_path / "auto")]) == 0
    auto = read_manifest(tmp_path / "auto")
    assert auto.extra["engine"] == {"ran": "local", "mode": "auto"} and auto.content_sha256 == local.content_sha256


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
def test_a_stopped_pull_on_ray_resumes_from_the_parts_it_parsed(tmp_path):
    """SIGTERM once a Ray task's part is parsed: the stopped pull keeps the parsed parts (and only them) beside
    the output; the rerun parses only the others and writes the in-process pull's bytes, then removes them."""
    import subprocess

    from test_stage_stop import _env, _kgllm, stop_once_kept

    files = []
    for k in range(8):   # compressed: one task per file
        f = tmp_path / f"part{k}.nt.gz"
        f.write_bytes(gzip.compress(b"".join(nt_lines(60_000, seed=k)), compresslevel=1))
        files.append(str(f))
    ref = tmp_path / "ref"
    r = subprocess.run(_kgllm("pull", "file", *files, "--out", str(ref), "--engine", "local"), env=_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "ray"
    cmd = _kgllm("pull", "file", *files, "--out", str(out), "--engine", "ray")
    kept = stop_once_kept(cmd, out, ".ray.parts-*/*.done.json", "the pull")
    assert 1 <= len(list(kept.glob("*.done.json"))) < 8

    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    man = read_manifest(out)
    assert man.extra["engine"]["parts"] == 8 and man.extra["engine"]["parts_resumed"] >= 1
    assert man.content_sha256 == read_manifest(ref).content_sha256 and man.counts == read_manifest(ref).counts
    assert not kept.exists() and not [x for x in tmp_path.iterdir() if x.name.startswith(".ray.")]


def test_a_large_pull_here_keeps_its_blocks_and_resumes_after_a_stop(tmp_path, monkeypatch):
    """In this process, line-based input of at least ``resume_bytes`` is parsed into blocks kept beside the
    output, with a checkpoint after each chunk of lines: a pull stopped half-way through a file (Ctrl-C while
    its third block is written) keeps the blocks of its last checkpoint, and the rerun goes on from there,
    writing the bytes of the streaming pull (blank nodes relabelled, bad lines quarantined the same), then
    removes them."""
    lines = nt_lines(130_000, seed=3)
    lines[30_007] = b"<http://example.org/a> <not an iri> <http://x> .\n"
    lines[71_002] = b"<http://example.org/a> <http://example.org/b> .\n"
    gz = tmp_path / "a.nt.gz"
    gz.write_bytes(gzip.compress(b"".join(lines[:100_000]), mtime=0))
    plain = tmp_path / "b.nt"
    plain.write_bytes(b"".join(lines[100_000:]))
    cfg = filesmod.FilePullConfig(skip_bad=True)
    ref = _pull([gz, plain], tmp_path / "ref", LOCAL, config=cfg)   # small input: streamed, nothing kept
    assert ref.extra["engine"] == {"ran": "local", "mode": "local"} and ref.counts["bad_lines"] == 2

    _stopped_at_third_block(monkeypatch, [gz, plain], tmp_path / "here", cfg)
    assert not (tmp_path / "here").exists()
    (kept,) = tmp_path.glob(".here.parts-*")
    assert sorted(x.name for x in kept.iterdir()) == [
        "000000.at.json", "000000.pickle.partial", filesmod.RESUME_OWNER]
    state = filesmod._resumed(kept / "000000.pickle")
    assert state["lines"] == 40_000   # two chunks checkpointed; the third block's chunk was not

    got = _pull([gz, plain], tmp_path / "here", LOCAL, config=cfg, resume_bytes=1)
    _same_bytes(ref, got, tmp_path / "ref", tmp_path / "here")
    assert got.extra["engine"]["parts"] == 2 and got.extra["engine"]["parts_resumed"] == 1
    assert not kept.exists() and not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
    # Without a stop, the kept-blocks path writes the same bytes too (and keeps nothing afterwards).
    again = _pull([gz, plain], tmp_path / "again", LOCAL, config=cfg, resume_bytes=1)
    _same_bytes(ref, again, tmp_path / "ref", tmp_path / "again")
    assert "parts_resumed" not in again.extra["engine"]
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".")]


def test_a_damaged_kept_block_is_a_clear_error_and_the_rerun_starts_over(tmp_path, monkeypatch):
    """A kept block that no longer reads (a disk that failed under it) stops the resumed pull with an error
    naming the file; the kept parts go, and the next run parses everything again, to the same bytes."""
    gz = tmp_path / "a.nt.gz"
    gz.write_bytes(gzip.compress(b"".join(nt_lines(70_000, seed=5)), mtime=0))
    cfg = filesmod.FilePullConfig(skip_bad=True)
    ref = _pull([gz], tmp_path / "ref", LOCAL, config=cfg)
    _stopped_at_third_block(monkeypatch, [gz], tmp_path / "here", cfg)
    (kept,) = tmp_path.glob(".here.parts-*")
    partial = kept / "000000.pickle.partial"
    data = bytearray(partial.read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = b"\x00" * 64   # inside the checkpointed blocks
    partial.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"000000\.pickle\.partial: a kept block of the pull is damaged"):
        _pull([gz], tmp_path / "here", LOCAL, config=cfg, resume_bytes=1)
    assert not kept.exists() and not (tmp_path / "here").exists()
    got = _pull([gz], tmp_path / "here", LOCAL, config=cfg, resume_bytes=1)
    _same_bytes(ref, got, tmp_path / "ref", tmp_path / "here")
    assert "parts_resumed" not in got.extra["engine"]


def _stopped_at_third_block(monkeypatch, paths: list[Path], out: Path, cfg) -> None:
    """The in-process pull of ``paths`` into ``out`` (through kept blocks), stopped by Ctrl-C while its third
    block is written (after the checkpoints of the chunks before it)."""
    real = filesmod._parse_part

    def stopped(config, part, on_block=None):
        seen = []

        def block(b):
            on_block(b)
            seen.append(b)
            if len(seen) == 3:
                raise KeyboardInterrupt
        return real(config, part, on_block=block)

    monkeypatch.setattr(filesmod, "_parse_part", stopped)
    with pytest.raises(KeyboardInterrupt):
        _pull(paths, out, LOCAL, config=cfg, resume_bytes=1)
    monkeypatch.undo()


def _same_bytes(ref, got, ref_dir: Path, got_dir: Path) -> None:
    assert got.content_sha256 == ref.content_sha256 and got.counts == ref.counts
    assert got.extra["files"] == ref.extra["files"] and got.extra["shards"] == ref.extra["shards"]
    assert (got_dir / QUARANTINE).read_bytes() == (ref_dir / QUARANTINE).read_bytes()
    verify_artifact(got_dir)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
def test_a_large_pull_here_stopped_by_sigterm_resumes(tmp_path, monkeypatch):
    """``kgllm pull file`` in this process (the default) on large input (KGLLM_PULL_RESUME_BYTES lowered to
    1 byte): SIGTERM once a block is checkpointed leaves only the resume directory; the rerun resumes and
    writes the bytes of an unstopped pull."""
    import subprocess

    from test_stage_stop import _env, _kgllm, stop_once_kept

    f = tmp_path / "big.nt.gz"
    f.write_bytes(gzip.compress(b"".join(nt_lines(400_000, seed=9)), compresslevel=1))
    ref = tmp_path / "ref"
    r = subprocess.run(_kgllm("pull", "file", str(f), "--out", str(ref)), env=_env(), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    monkeypatch.setenv("KGLLM_PULL_RESUME_BYTES", "1")
    out = tmp_path / "here"
    cmd = _kgllm("pull", "file", str(f), "--out", str(out))
    kept = stop_once_kept(cmd, out, ".here.parts-*/*.at.json", "the pull")
    assert (kept / "000000.pickle.partial").exists() and not list(kept.glob("*.done.json"))
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "in part" in r.stderr
    man = read_manifest(out)
    assert man.extra["engine"]["parts_resumed"] == 1
    assert man.content_sha256 == read_manifest(ref).content_sha256 and man.counts == read_manifest(ref).counts
    assert not kept.exists() and not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
