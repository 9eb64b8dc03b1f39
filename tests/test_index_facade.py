"""The index stage and the KGIndex facade, with the real packaged encoder and faiss: build, search,
save/load round trip, delete really removes, upsert without rebuild, HNSW recall, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgllm.cli import main
from kgllm.index import load_index
from kgllm.index.vector import Encoder, VectorIndex
from kgllm.rdf import DBO, DBR, RDFS, GraphWriter, iter_graph, triple_id
from kgllm.registry import run_stage

ENTITIES = {"British_Airways", "KLM", "Lufthansa", "Rome", "Colosseum", "Porsche", "Heathrow_Airport"}
LONG = {f"<{DBO}abstract>", f"<{RDFS}comment>"}


def R(x: str) -> str:
    return f"<{DBR}{x}>"


@pytest.fixture(scope="module")
def small_graph(dbpedia_graph, tmp_path_factory):
    """The DBpedia sample's triples about a few entities (abstracts left out to keep encoding quick)."""
    out = tmp_path_factory.mktemp("idx") / "graph"
    with GraphWriter(out) as w:
        w.add_all([t for t in iter_graph(dbpedia_graph) if t[0] in {R(e) for e in ENTITIES} and t[1] not in LONG],
                  {"source": "dbpedia-sample subset"})
    return out


@pytest.fixture(scope="module")
def index_dir(small_graph, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "index"
    run_stage("index", [small_graph], out, {"vector": {"batch_size": 128}})
    return out


def test_index_artifact_counts(index_dir, small_graph):
    man = json.loads((index_dir / "manifest.json").read_text())
    c = man["counts"]
    n = sum(1 for _ in iter_graph(small_graph))
    assert c["graph_read"] == n == c["triples"]
    # Every triple is embedded or counted as not embedded (skipped predicate / over the cap).
    assert c["triples_embedded"] + c["triples_not_embedded_predicate"] + c["triples_not_embedded_cap"] == n
    assert c["triple_index"] == "flat" and c["triple_recall_at_10"] == 1.0
    assert c["entity_vectors"] >= len(ENTITIES) - 1
    assert man["kind"] == "index"


def test_facade_queries(index_dir):
    idx = load_index(index_dir)
    hits = idx.search("Which airport is the hub of British Airways?", k=5)
    top = idx.triples([hits[0].triple_id])[0]
    assert (top.s, top.p) == (R("British_Airways"), f"<{DBO}hubAirport>")
    assert top.provenance["source"] == "dbpedia-sample subset"
    ents = idx.search("Roman amphitheatre", k=3, kind="entity")
    assert R("Colosseum") in [h.iri for h in ents]
    m = idx.link("Is the Colosseum in Rome?")
    assert [x.iri for x in m] == [R("Colosseum"), R("Rome")]
    assert idx.label(f"{DBR}Heathrow_Airport") == "Heathrow Airport"
    nb = idx.triples(idx.neighbors(R("British_Airways"), 1))
    assert any(t.o == R("Heathrow_Airport") for t in nb)
    path = idx.paths(R("British_Airways"), R("Heathrow_Airport"), 2)
    assert path and idx.triples(path[0])[0].p == f"<{DBO}hubAirport>"
    ranked = [t for t, _s in idx.ppr([R("British_Airways")], 10)]
    assert ranked[0] == R("British_Airways") and R("Heathrow_Airport") in ranked


def test_save_load_round_trip(index_dir, tmp_path):
    idx = load_index(index_dir)
    idx.save(tmp_path / "copy")
    a, b = load_index(index_dir), load_index(tmp_path / "copy")
    q = "Porsche cars"
    assert [(h.key, round(h.score, 5)) for h in a.search(q, 5)] == [(h.key, round(h.score, 5)) for h in b.search(q, 5)]
    assert a.graph.terms == b.graph.terms
    assert dict(a.lexicon.keys) == dict(b.lexicon.keys)
    assert a.vectors["entity"].keys == b.vectors["entity"].keys


def test_delete_really_removes_and_upsert_adds(index_dir, tmp_path):
    idx = load_index(index_dir)
    q = "Which airport is the hub of British Airways?"
    hub = [h.key for h in idx.search(q, 10) if "Heathrow" in h.text]
    assert hub
    ba_hubs = [t.id for t in idx.triples(idx.neighbors(R("British_Airways"), 1)) if t.p == f"<{DBO}hubAirport>"]
    assert idx.delete(ba_hubs) == len(ba_hubs)
    for h in idx.search(q, 50):  # never returned again, by any route
        assert h.key not in ba_hubs
    assert not set(ba_hubs) & set(idx.neighbors(R("British_Airways"), 2))
    assert idx.triples(ba_hubs) == []
    # The entity description that mentioned the fact was re-embedded without it.
    assert "hub airport" not in idx.entity_text(idx.graph.term_id(R("British_Airways")))
    assert idx.paths(R("British_Airways"), R("Heathrow_Airport"), 1) == []
    new = (R("British_Airways"), f"<{DBO}hubAirport>", R("Singapore_Changi_Airport"))
    added = idx.upsert([new, (R("Singapore_Changi_Airport"), f"<{RDFS}label>", '"Singapore Changi Airport"@en')])
    assert triple_id(*new) in added
    assert idx.search(q, 1)[0].key == triple_id(*new)
    assert idx.link("Flights to Singapore Changi Airport")[0].iri == R("Singapore_Changi_Airport")
    # The edited index saves and loads with the same behaviour; deleted triples are gone from disk.
    idx.save(tmp_path / "edited")
    again = load_index(tmp_path / "edited")
    assert again.graph.row_of(ba_hubs[0]) is None
    assert again.search(q, 1)[0].key == triple_id(*new)
    assert all(h.key not in ba_hubs for h in again.search(q, 50))


def test_hnsw_recall_and_tombstones(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    keys = [f"k{i}" for i in range(len(v))]
    vi = VectorIndex.build(keys, v, exact_threshold=1000, recall_queries=200)
    assert vi.kind == "hnsw" and vi.info["recall_at_10"] >= 0.9
    assert vi.search(v[:1], 1)[0][0][0] == "k0"
    vi.remove(["k0"])
    assert all(k != "k0" for k, _ in vi.search(v[:1], 10)[0])
    assert len(vi.search(v[:1], 10)[0]) == 10  # over-fetch fills k despite the tombstone
    vi.save(tmp_path, "t")
    vi2 = VectorIndex.load(tmp_path, "t")
    assert vi2.search(v[5:6], 5) == vi.search(v[5:6], 5)
    flat = VectorIndex.build(keys[:500], v[:500])
    assert flat.kind == "flat" and flat.info["recall_at_10"] == 1.0


def test_encoder_is_offline_package_model():
    e = Encoder()
    a, b, c = e.encode(["a dog barks", "a puppy is barking", "stock market prices"])
    assert e.dim == 384 and abs(float(np.linalg.norm(a)) - 1) < 1e-4
    assert float(a @ b) > float(a @ c)


def test_cli_index_without_vectors(small_graph, tmp_path, capsys):
    rc = main(["index", str(small_graph), "--out", str(tmp_path / "ix"), "--no-vectors"])
    assert rc == 0
    assert "index artifact" in capsys.readouterr().out
    idx = load_index(tmp_path / "ix")
    assert idx.vectors == {} and idx.link("KLM")[0].iri == R("KLM")
    assert main(["index", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2


def test_corpus_triple_texts_are_embedded(small_graph, tmp_path):
    from kgllm.artifacts import ArtifactWriter

    s, p, o = next(t for t in iter_graph(small_graph) if t[1] == f"<{DBO}hubAirport>")
    tid = triple_id(s, p, o)
    with ArtifactWriter(tmp_path / "corpus", "corpus") as w:
        (w.path / "triples.jsonl").write_text(json.dumps(
            {"id": tid, "s": s, "p": p, "o": o, "text": "Zebra crossings are painted stripes."}) + "\n")
    out = tmp_path / "ix"
    run_stage("index", [small_graph, tmp_path / "corpus"], out,
              {"vector": {"entities": False, "max_triples": 40}})
    idx = load_index(out)
    assert idx.counts["corpus_texts"] == 1
    hit = idx.search("zebra crossing stripes", 1)[0]
    assert hit.triple_id == tid and hit.text.startswith("Zebra")
    assert idx.counts["triples_not_embedded_cap"] > 0  # the cap is counted, not silent


def test_long_embeddings_report_progress_and_match_one_call(rag_index, monkeypatch, capsys):
    """Many texts are encoded chunk by chunk with a progress bar (rate, ETA); the vectors are those of one call."""
    import numpy as np

    from kgllm.index.facade import load_index

    idx = load_index(rag_index)
    texts = [f"Airline number {i} has its hub at airport {i % 7}." for i in range(23)]
    monkeypatch.setenv("KGLLM_PROGRESS", "1")
    chunked = idx._encode_parts({"triple": texts}, chunk=5)["triple"]
    err = capsys.readouterr().err
    assert "index: embedding triple texts" in err and "text/s" in err
    whole = idx.encoder.encode(texts)
    assert chunked.shape == whole.shape and np.allclose(chunked, whole, atol=1e-5)


def test_a_stopped_index_run_resumes_from_its_embedded_chunks(small_graph, tmp_path, monkeypatch):
    # Ctrl-C during the third embedding chunk: the two finished chunks stay beside the output (and only
    # they), the rerun encodes only the rest and writes what an unbroken run writes, then removes them.
    from kgllm.artifacts import read_manifest
    from kgllm.index.vector import Encoder

    cfg = {"vector": {"batch_size": 128, "chunk_size": 16}}
    real, calls = Encoder.encode, []

    def stop_third(self, texts, *a, **kw):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, texts, *a, **kw)

    out = tmp_path / "index"
    monkeypatch.setattr(Encoder, "encode", stop_third)
    with pytest.raises(KeyboardInterrupt):
        run_stage("index", [small_graph], out, cfg)
    monkeypatch.setattr(Encoder, "encode", real)
    assert not out.exists()
    left = sorted(x.name for x in tmp_path.iterdir())
    assert left == [".index.chunks"]
    assert len(list((tmp_path / ".index.chunks").glob("*.npy"))) == 2
    run_stage("index", [small_graph], out, cfg)
    m = read_manifest(out)
    assert m.counts["vector_chunks_reused"] == 2
    assert sorted(x.name for x in tmp_path.iterdir()) == ["index"]
    run_stage("index", [small_graph], tmp_path / "fresh", cfg)
    fresh = read_manifest(tmp_path / "fresh")
    assert fresh.counts["vector_chunks_reused"] == 0
    assert fresh.content_sha256 == m.content_sha256
