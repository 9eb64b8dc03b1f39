"""Graph index: CSR build over the real DBpedia sample, save/load round trip, neighbourhoods, paths,
personalized PageRank on a small graph, upsert and delete."""

from __future__ import annotations

import numpy as np
import pytest

from kgllm.index.graph import GraphIndex, tid_hex
from kgllm.rdf import DBO, DBR, RDF, GraphWriter, iter_graph, triple_id


def R(x: str) -> str:
    return f"<{DBR}{x}>"


def P(x: str) -> str:
    return f"<{DBO}{x}>"


@pytest.fixture(scope="module")
def built(dbpedia_graph):
    return GraphIndex.build(iter_graph(dbpedia_graph, with_provenance=True))


def test_build_counts_and_sorted_ids(built, dbpedia_graph):
    g, counts = built
    triples = list(iter_graph(dbpedia_graph))
    assert counts == {"read": len(triples), "duplicates": 0, "triples": len(triples)}
    assert g.terms == sorted(g.terms)
    # Every triple is found by its id, with its terms and provenance.
    for s, p, o in triples[::97]:
        r = g.row_of(triple_id(s, p, o))
        assert g.triple_terms(r) == (s, p, o)
        assert g.row_source(r)["source"] == "file"
    # CSR: the out edges of Rome are exactly its triples with an IRI object.
    rome = g.term_id(R("Rome"))
    expect = sorted((o, p) for s, p, o in triples if s == R("Rome") and o.startswith("<"))
    got = sorted((g.terms[n], g.terms[p]) for n, p, _r, _d in g.edges(rome, "out"))
    assert got == expect


def test_duplicates_across_inputs_are_counted(dbpedia_graph):
    both = [(t, {"source": "a"}) for t in iter_graph(dbpedia_graph)] * 2
    _g, counts = GraphIndex.build(both)
    assert counts["read"] == counts["triples"] + counts["duplicates"]
    assert counts["duplicates"] == counts["triples"]


def test_duplicates_keep_their_first_row_and_source(dbpedia_graph):
    """A triple read again keeps its first occurrence's row and provenance; a shard holding only triples read
    before brings no source; the index equals one built from the distinct triples alone."""
    triples = list(iter_graph(dbpedia_graph))
    half = len(triples) // 2
    pairs = ([(t, {"source": "a"}) for t in triples[:half]] + [(t, {"source": "b"}) for t in triples[:50]]
             + [(t, {"source": "c"}) for t in triples[40:]])
    g, counts = GraphIndex.build(pairs)
    assert counts == {"read": len(pairs), "duplicates": 50 + (half - 40), "triples": len(triples)}
    assert g.sources == [{"source": "a"}, {"source": "c"}]
    for s, p, o in triples[:half:37]:
        assert g.row_source(g.row_of(triple_id(s, p, o))) == {"source": "a"}
    for s, p, o in triples[half::37]:
        assert g.row_source(g.row_of(triple_id(s, p, o))) == {"source": "c"}
    want, _ = GraphIndex.build([(t, {"source": "a" if i < half else "c"}) for i, t in enumerate(triples)])
    assert g.terms == want.terms and g.sources == want.sources
    for name in ("triples", "tids", "source", "out_indptr", "out_nbr", "in_row"):
        assert np.array_equal(np.asarray(g.a[name]), np.asarray(want.a[name])), name


def test_save_load_round_trip(built, tmp_path):
    g, _ = built
    info = g.save(tmp_path)
    g2 = GraphIndex.load(tmp_path)
    assert isinstance(g2.a["out_nbr"], np.memmap)  # memory-mapped, not read into memory
    assert g2.terms == g.terms and info["triples"] == g.n_rows
    for name in ("triples", "tids", "out_indptr", "out_nbr", "in_row"):
        assert np.array_equal(np.asarray(g2.a[name]), np.asarray(g.a[name])), name
    rome = g.term_id(R("Rome"))
    assert g2.neighbors(rome, 2) == g.neighbors(rome, 2)


def test_neighbors_and_paths(built):
    g, _ = built
    ba = g.term_id(R("British_Airways"))
    one = {g.triple_terms(r) for r in g.neighbors(ba, 1)}
    assert (R("British_Airways"), P("hubAirport"), R("Heathrow_Airport")) in one
    only = g.neighbors(ba, 1, predicates={g.term_id(P("hubAirport"))})
    assert {g.triple_terms(r)[1] for r in only} == {P("hubAirport")}
    two = g.neighbors(ba, 2)
    assert set(g.neighbors(ba, 1)) <= set(two) and len(two) > len(one)
    # Paths avoid rdf:type when asked (owl:Thing would connect every pair in two hops).
    rdf_type = g.term_id(f"<{RDF}type>")
    heathrow = g.term_id(R("Heathrow_Airport"))
    paths = g.paths(ba, heathrow, 2, exclude={rdf_type})
    assert paths and all(len(p) == 1 for p in paths)
    assert g.triple_terms(paths[0][0]) == (R("British_Airways"), P("hubAirport"), R("Heathrow_Airport"))


def _small_graph(tmp_path):
    # Two communities joined by one bridge: a0..a4 (a star around a0) and b0..b5 (a ring).
    t = [(R(f"a{i}"), P("link"), R("a0")) for i in range(1, 5)] + [(R("a1"), P("link"), R("a2"))]
    t += [(R(f"b{i}"), P("link"), R(f"b{(i + 1) % 6}")) for i in range(6)]
    t += [(R("a4"), P("bridge"), R("b0")), (R("a0"), P("name"), '"A zero"')]
    with GraphWriter(tmp_path / "small") as w:
        w.add_all(t, {"source": "test"})
    return GraphIndex.build(iter_graph(tmp_path / "small", with_provenance=True))[0]


def test_ppr_ranks_the_seed_neighbourhood_first(tmp_path):
    g = _small_graph(tmp_path)
    ranked = [g.terms[n] for n, _s in g.ppr([g.term_id(R("a1"))], k=20)]
    assert ranked[0] == R("a1")
    a_side = {R(f"a{i}") for i in range(5)}
    assert set(ranked[:5]) == a_side  # the seed's community before anything across the bridge
    assert all(t.startswith("<") for t in ranked)  # literals are not nodes
    scores = dict(g.ppr([g.term_id(R("a1"))], k=20))
    assert abs(sum(scores.values()) - 1.0) < 1e-6


def test_upsert_and_delete(tmp_path):
    g = _small_graph(tmp_path)
    a1, b3 = g.term_id(R("a1")), g.term_id(R("b3"))
    assert len(g.paths(a1, b3, 3)) == 0
    new = (R("a1"), P("shortcut"), R("b3"))
    rows, present = g.upsert([new, (R("a1"), P("link"), R("a0"))], {"source": "upsert"})
    assert present == 1 and len(rows) == 1
    assert [[g.triple_terms(r) for r in p] for p in g.paths(a1, b3, 3)] == [[new]]
    assert g.ppr([a1], 3)[1][0] in (b3, g.term_id(R("a0")))
    # Delete: the edge disappears from neighbours, paths and PageRank, also after save/load.
    g.delete(rows)
    assert g.paths(a1, b3, 1) == []
    assert all(g.triple_terms(r) != new for r in g.neighbors(a1, 1))
    g.save(tmp_path / "saved")
    g2 = GraphIndex.load(tmp_path / "saved")
    assert g2.row_of(triple_id(*new)) is None
    assert g2.n_rows == g.n_live
    # Upsert after load, then save again: compacted, still sorted and consistent.
    rows2, _ = g2.upsert([(R("c0"), P("link"), R("a0"))], {"source": "upsert2"})
    assert tid_hex(g2.row_tid(rows2[0])) == triple_id(R("c0"), P("link"), R("a0"))
    g2.save(tmp_path / "saved2")
    g3 = GraphIndex.load(tmp_path / "saved2")
    assert g3.terms == sorted(g3.terms)
    c0 = g3.term_id(R("c0"))
    assert [g3.terms[n] for n, _p, _r, _d in g3.edges(c0)] == [R("a0")]
    assert g3.row_source(g3.row_of(triple_id(R("c0"), P("link"), R("a0"))))["source"] == "upsert2"


def test_subject_triples_are_the_live_rows_of_a_subject(tmp_path):
    """An entity's stored rows come as one slice, rows added later after them; deleted rows are left out."""
    g = _small_graph(tmp_path)
    a0, a1 = g.term_id(R("a0")), g.term_id(R("a1"))

    def expected(node):
        return [(r, *g.triple_terms(r), g.row_tid(r)) for r in range(g.n_rows) if g.alive(r)
                and g.triple_terms(r)[0] == g.terms[node]]

    assert g.subject_triples(a0) == expected(a0) == [(r, R("a0"), P("name"), '"A zero"', g.row_tid(r))
                                                     for r, *_ in expected(a0)]
    stored = g.subject_triples(a1)
    assert len(stored) == 2 and all(tid_hex(t) == triple_id(s, p, o) for _r, s, p, o, t in stored)
    rows, _ = g.upsert([(R("a1"), P("shortcut"), R("b3"))], {"source": "upsert"})
    assert g.subject_triples(a1) == expected(a1) and g.subject_triples(a1)[-1][0] == rows[0]
    g.delete([stored[0][0]])
    assert g.subject_triples(a1) == expected(a1) and len(expected(a1)) == 2
    assert g.subject_rows(a1) == [r for r, *_ in expected(a1)]
