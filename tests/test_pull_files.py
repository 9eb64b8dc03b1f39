"""``pull.file``: real DBpedia sample files in every format and compression, malformed input with the
right file and line, ``--skip-bad`` quarantine and counts, blank nodes, N-Quads, CLI exit codes."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pyoxigraph
import pytest
from conftest import DBPEDIA_SAMPLE, ONTOLOGIES, dbpedia_files

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.errors import ConfigError, InputError, UsageError
from kgllm.pull import files as filesmod
from kgllm.pull.files import QUARANTINE, FilePullConfig, pull_files
from kgllm.rdf import DBO, OWL_CLASS, RDF_TYPE, iri, iter_graph
from kgllm.registry import run_stage

LABELS = DBPEDIA_SAMPLE / "labels_en.ttl.xz"          # 98 real N-Triples lines
OBJECTS = DBPEDIA_SAMPLE / "mappingbased_objects_en.ttl.xz"
OX = {"nt": pyoxigraph.RdfFormat.N_TRIPLES, "ttl": pyoxigraph.RdfFormat.TURTLE,
      "rdf": pyoxigraph.RdfFormat.RDF_XML, "nq": pyoxigraph.RdfFormat.N_QUADS}
COMPRESS = {"": lambda b: b, ".gz": lambda b: gzip.compress(b, mtime=0), ".bz2": bz2.compress, ".xz": lzma.compress}


def real_lines(path: Path = LABELS) -> list[bytes]:
    return lzma.decompress(path.read_bytes()).splitlines(keepends=True)


@pytest.fixture(scope="module")
def sample() -> list[tuple[str, str, str]]:
    """40 real DBpedia triples: labels (language-tagged literals) and object properties (IRIs)."""
    quads = list(pyoxigraph.parse(b"".join(real_lines(LABELS)[:20] + real_lines(OBJECTS)[:20]),
                                  format=pyoxigraph.RdfFormat.N_TRIPLES))
    return quads


def test_every_format_and_compression(sample, tmp_path):
    graph = pyoxigraph.NamedNode("http://example.org/graph/1")
    paths = []
    for ext, fmt in OX.items():
        if fmt == pyoxigraph.RdfFormat.N_QUADS:
            data = pyoxigraph.serialize([pyoxigraph.Quad(q.subject, q.predicate, q.object, graph) for q in sample],
                                        format=fmt)
        else:
            data = pyoxigraph.serialize([pyoxigraph.Triple(q.subject, q.predicate, q.object) for q in sample],
                                        format=fmt, prefixes={"dbr": "http://dbpedia.org/resource/"}
                                        if fmt != pyoxigraph.RdfFormat.N_TRIPLES else None)
        for comp, fn in COMPRESS.items():
            p = tmp_path / f"sample.{ext}{comp}"
            p.write_bytes(fn(data))
            paths.append(p)
    man = pull_files(paths, tmp_path / "g")
    verify_artifact(tmp_path / "g")
    expected = {(str(q.subject), str(q.predicate), str(q.object)) for q in sample}
    assert set(iter_graph(tmp_path / "g")) == expected
    files = man.extra["files"]
    assert [f["format"] for f in files] == [f for f in ("ntriples", "turtle", "rdfxml", "nquads") for _ in range(4)]
    assert [f["compression"] for f in files[:4]] == [None, "gz", "bz2", "xz"]
    assert all(f["statements"] == len(sample) for f in files)
    # the first file keeps them all, every later file only repeats them
    assert files[0]["triples"] == len(sample) and all(f["duplicates"] == len(sample) for f in files[1:])
    assert man.counts["triples"] == len(sample) and man.counts["duplicates"] == 15 * len(sample)
    assert man.counts["named_graph_quads"] == 4 * len(sample)  # graph names dropped, counted
    assert man.counts["statements"] == man.counts["triples"] + man.counts["duplicates"]
    prov = man.extra["shards"][0]["provenance"]
    assert prov == {"source": "file", "path": str(paths[0]), "sha256": files[0]["sha256"], "format": "ntriples"}


def test_bundled_dbpedia_dump_equals_the_shared_fixture(dbpedia_graph, tmp_path):
    """The real DBpedia .ttl.xz files (N-Triples inside), read as N-Triples: byte-identical shards."""
    man = pull_files(dbpedia_files(), tmp_path / "g", FilePullConfig(format="nt"))
    assert man.content_sha256 == read_manifest(dbpedia_graph).content_sha256
    assert man.counts["lines"] == man.counts["statements"] + man.counts["blank_lines"]
    # and read as Turtle (their extension): the same triples
    man2 = pull_files(dbpedia_files()[:2], tmp_path / "t")
    assert [f["format"] for f in man2.extra["files"]] == ["turtle", "turtle"]
    assert set(iter_graph(tmp_path / "t")) <= set(iter_graph(dbpedia_graph))


def test_owl_ontology_rdfxml_xz(tmp_path):
    man = pull_files([ONTOLOGIES / "dbpedia" / "dbo.owl.xz"], tmp_path / "o")
    triples = set(iter_graph(tmp_path / "o"))
    assert man.extra["files"][0]["format"] == "rdfxml" and man.counts["triples"] == len(triples) > 10_000
    assert (iri(DBO + "Person"), RDF_TYPE, OWL_CLASS) in triples


def planted(tmp_path: Path, name: str = "labels.nt.gz") -> Path:
    """The real labels file with 3 malformed lines, a blank and a comment line planted (113 lines)."""
    lines = real_lines()
    lines.insert(40, b'<http://dbpedia.org/resource/X> <http://www.w3.org/2000/01/rdf-schema#label> "no end\n')
    lines.insert(41, b"\n")
    lines.insert(60, b"# a comment line\n")
    lines.insert(70, b"<http://dbpedia.org/resource/Y> <not an iri> <http://x.org/> .\n")
    lines.append(b"<http://dbpedia.org/resource/Z> <http://x.org/p> <http://x.org/o>\n")  # no final dot
    p = tmp_path / name
    p.write_bytes(gzip.compress(b"".join(lines), mtime=0))
    return p


def test_malformed_line_names_file_and_line(tmp_path, capsys):
    bad = planted(tmp_path)
    with pytest.raises(InputError, match=rf"{bad}:41:\d+: malformed ntriples: .*--skip-bad"):
        pull_files([bad], tmp_path / "g")
    assert not (tmp_path / "g").exists()
    assert main(["pull", "file", str(bad), "--out", str(tmp_path / "g")]) == 2
    assert f"{bad}:41:" in capsys.readouterr().err


def test_malformed_turtle_names_the_line(tmp_path):
    ttl = tmp_path / "bad.ttl.bz2"
    text = b"@prefix dbr: <http://dbpedia.org/resource/> .\n\ndbr:Rome dbr:p dbr:Italy ;\n  dbr:q \"x\" .\ndbr:Rome dbr:p dbr:Italy dbr:extra .\n"
    ttl.write_bytes(bz2.compress(text))
    with pytest.raises(InputError, match=rf"{ttl}:5:\d+: malformed turtle"):
        pull_files([ttl], tmp_path / "g", FilePullConfig(skip_bad=True))  # skip-bad is for line formats only


@pytest.mark.parametrize("chunk", [filesmod._CHUNK_LINES, 7])
def test_skip_bad_quarantines_and_counts(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(filesmod, "_CHUNK_LINES", chunk)  # 7: bad lines fall at chunk starts and ends
    bad = planted(tmp_path)
    man = pull_files([bad], tmp_path / "g", FilePullConfig(skip_bad=True))
    c = man.counts
    assert (c["lines"], c["statements"], c["bad_lines"], c["blank_lines"]) == (103, 98, 3, 2)
    assert c["lines"] == c["statements"] + c["bad_lines"] + c["blank_lines"]
    assert c["statements"] == c["triples"] + c["duplicates"] and c["triples"] == 98
    rows = [json.loads(x) for x in (tmp_path / "g" / QUARANTINE).read_text().splitlines()]
    assert [r["line"] for r in rows] == [41, 71, 103]
    assert rows[1]["text"] == "<http://dbpedia.org/resource/Y> <not an iri> <http://x.org/> ."
    assert all(r["file"] == str(bad) and r["message"] for r in rows)
    assert set(iter_graph(tmp_path / "g")) == {
        (str(q.subject), str(q.predicate), str(q.object))
        for q in pyoxigraph.parse(b"".join(real_lines()), format=pyoxigraph.RdfFormat.N_TRIPLES)}
    assert any(f["path"] == QUARANTINE for f in man.files)  # the quarantine is part of the artifact


def test_cli_skip_bad_and_exit_codes(tmp_path, capsys):
    bad = planted(tmp_path)
    assert main(["pull", "file", str(bad), "--skip-bad", "--out", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "graph artifact" in out and "bad_lines=3" in out
    assert main(["pull", "file", str(tmp_path / "missing.nt"), "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "data.json").write_text("{}")
    assert main(["pull", "file", str(tmp_path / "data.json"), "--out", str(tmp_path / "x")]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["pull", "file", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_blank_nodes_are_deterministic_and_distinct_per_file(tmp_path):
    ttl = b"@prefix ex: <http://example.org/> .\nex:a ex:p [ ex:q 1 ] .\nex:b ex:p _:n .\n_:n ex:q 2 .\n"
    a, b = tmp_path / "a.ttl", tmp_path / "b.ttl"
    a.write_bytes(ttl)
    b.write_bytes(ttl + b"# another file\n")
    m1 = pull_files([a, b], tmp_path / "g1")
    m2 = pull_files([a, b], tmp_path / "g2")
    assert m1.content_sha256 == m2.content_sha256  # pyoxigraph's random labels are replaced
    triples = list(iter_graph(tmp_path / "g1"))
    assert len(triples) == 8 and m1.counts["duplicates"] == 0  # same shapes in two files: different nodes
    bnodes = {x for t in triples for x in (t[0], t[2]) if x.startswith("_:")}
    assert len(bnodes) == 4
    assert {x[:15] for x in bnodes} == {f"_:b{f['sha256'][:12]}" for f in m1.extra["files"]}


def test_stage_and_config(tmp_path):
    man = run_stage("pull.file", [], tmp_path / "g", {"paths": [str(LABELS)], "format": "nt"})
    assert man.kind == "graph" and man.counts["triples"] == 98
    with pytest.raises(ConfigError, match="format"):
        FilePullConfig(format="json")
    with pytest.raises(UsageError):
        run_stage("pull.file", [], tmp_path / "h", {"paths": []})


def test_relative_iris_need_a_base(tmp_path):
    rdf = tmp_path / "rel.rdf"
    rdf.write_text('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
                   ' xmlns:ex="http://x.org/">\n<rdf:Description rdf:about="Rome"><ex:p rdf:resource="Italy"/>'
                   '</rdf:Description>\n</rdf:RDF>\n')
    ttl = tmp_path / "rel.ttl.gz"
    ttl.write_bytes(gzip.compress(b"<Rome> <http://x.org/q> <Lazio> .\n"))
    for p in (rdf, ttl):
        with pytest.raises(InputError, match="base IRI"):
            pull_files([p], tmp_path / "g")
    man = pull_files([rdf, ttl], tmp_path / "g", FilePullConfig(base_iri="http://dbpedia.org/resource/"))
    assert set(iter_graph(tmp_path / "g")) == {
        ("<http://dbpedia.org/resource/Rome>", "<http://x.org/p>", "<http://dbpedia.org/resource/Italy>"),
        ("<http://dbpedia.org/resource/Rome>", "<http://x.org/q>", "<http://dbpedia.org/resource/Lazio>")}
    assert man.config["paths"] == [str(rdf), str(ttl)]
