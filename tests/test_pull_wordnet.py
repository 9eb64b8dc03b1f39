"""``pull.wordnet``: real WordNet 3.0 (Debian wordnet-base through nltk), subset pulls checked triple by
triple against known WordNet facts, manifest counts, determinism across processes, the error without
WordNet, and the exact adverb counts of WordNet 3.0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.errors import ConfigError, InputError
from kgllm.pull import wordnet as wnmod
from kgllm.pull import wordnet_data
from kgllm.pull.wordnet import WordNetPullConfig, open_wordnet, pull_wordnet
from kgllm.pull.wordnet import _literal as literal
from kgllm.rdf import DC, KGWN, ONTOLEX, RDF_TYPE, RDFS_LABEL, WN, iri, iter_graph, parse_literal

ROOTS = ["dog.n.01", "good.a.01", "slowly.r.01", "teach.v.01", "physicist.n.01", "canis.n.01"]


def S(offset_pos: str) -> str:
    return f"<{KGWN}{offset_pos}>"


def K(sense_key: str) -> str:
    from urllib.parse import quote

    return f"<{KGWN}sense/{quote(sense_key)}>"


def P(ns: str, local: str) -> str:
    return iri(ns + local)


@pytest.fixture(scope="module")
def wordnet():
    return open_wordnet()


@pytest.fixture(scope="module")
def subset(wordnet, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wn") / "subset"
    pull_wordnet(out, WordNetPullConfig(roots=ROOTS), wordnet=wordnet)
    return out


@pytest.fixture(scope="module")
def triples(subset) -> set[tuple[str, str, str]]:
    return set(iter_graph(subset))


def test_known_synset_facts(triples):
    dog, canine = S("02084071-n"), S("02083346-n")
    assert (dog, P(WN, "hypernym"), canine) in triples
    assert (dog, RDF_TYPE, P(WN, "Synset")) in triples
    assert (dog, RDF_TYPE, P(ONTOLEX, "LexicalConcept")) in triples
    assert (dog, P(WN, "partOfSpeech"), P(WN, "noun")) in triples
    assert (dog, P(DC, "identifier"), '"dog.n.01"') in triples
    assert (dog, RDFS_LABEL, '"dog"@en') in triples
    assert (dog, P(WN, "lexfile"), '"noun.animal"') in triples
    assert (dog, P(WN, "example"), '"the dog barked all night"@en') in triples
    defs = [o for s, p, o in triples if s == dog and p == P(WN, "definition")]
    assert len(defs) == 1 and parse_literal(defs[0])[0].startswith("a member of the genus Canis")
    # instance hypernym: Einstein is an instance of physicist (reached by the instance-hyponym closure)
    assert (S("10954498-n"), P(WN, "instance_hypernym"), S("10428004-n")) in triples
    assert (S("10428004-n"), P(WN, "instance_hyponym"), S("10954498-n")) in triples
    # member meronym: the genus Canis has the dog as a member
    assert (S("02083863-n"), P(WN, "mero_member"), dog) in triples
    assert (dog, P(WN, "holo_member"), S("02083863-n")) in triples
    # similar-to targets of a head adjective are satellites: their IRIs end in -s
    sims = {o for s, p, o in triples if s == S("01123148-a") and p == P(WN, "similar")}
    assert S("01124574-s") in sims and all(o.endswith("-s>") for o in sims)


def test_known_sense_relations(triples):
    assert (K("good%3:00:01::"), P(WN, "antonym"), K("bad%3:00:00::")) in triples
    assert (K("slowly%4:02:02::"), P(WN, "pertainym"), K("slow%3:00:01::")) in triples
    assert (K("teach%2:32:00::"), P(WN, "derivation"), K("teacher%1:18:00::")) in triples
    assert (K("teach%2:32:00::"), P(WN, "derivation"), K("teachable%5:00:00:tractable:00")) in triples
    sense, entry = K("dog%1:05:00::"), f"<{KGWN}entry/dog-n>"
    assert (sense, RDF_TYPE, P(ONTOLEX, "LexicalSense")) in triples
    assert (sense, P(ONTOLEX, "isLexicalizedSenseOf"), S("02084071-n")) in triples
    assert (entry, P(ONTOLEX, "sense"), sense) in triples
    assert (entry, RDF_TYPE, P(ONTOLEX, "LexicalEntry")) in triples
    assert (entry, P(ONTOLEX, "canonicalForm"), f"<{KGWN}entry/dog-n#form>") in triples
    assert (f"<{KGWN}entry/dog-n#form>", P(ONTOLEX, "writtenRep"), '"dog"@en') in triples
    assert (f"<{KGWN}entry/domestic_dog-n#form>", P(ONTOLEX, "writtenRep"), '"domestic dog"@en') in triples


def test_outside_targets_are_described(triples, subset):
    # bad.a.01 is outside the subset: it is still typed, labelled and defined, and its sense has an entry
    bad, bad_sense = S("01125429-a"), K("bad%3:00:00::")
    assert (bad, RDF_TYPE, P(WN, "Synset")) in triples
    assert (bad, P(DC, "identifier"), '"bad.a.01"') in triples
    assert (bad_sense, P(ONTOLEX, "isLexicalizedSenseOf"), bad) in triples
    assert (f"<{KGWN}entry/bad-a>", P(ONTOLEX, "sense"), bad_sense) in triples
    # ... but carries no relations of its own
    assert not [t for t in triples if t[0] == bad and t[1] == P(WN, "antonym")]
    # every synset IRI that appears anywhere is described (no dangling synset references)
    synsets = {s for s, p, o in triples if p == RDF_TYPE and o == P(WN, "Synset")}
    mentioned = {x for t in triples for x in (t[0], t[2]) if re.fullmatch(rf"<{KGWN}\d{{8}}-[nvars]>", x)}
    assert mentioned <= synsets


def test_manifest_counts_add_up(subset, triples):
    man = verify_artifact(subset)
    c = man.counts
    assert man.kind == "graph"
    assert c["triples"] == len(triples)
    assert c["emitted"] == c["triples"] + c["duplicates"]
    synsets = {s for s, p, o in triples if p == RDF_TYPE and o == P(WN, "Synset")}
    assert len(synsets) == c["synsets"] + c["boundary_synsets"]
    ids = [s for s, p, o in triples if p == P(DC, "identifier")]
    assert len(ids) == len(set(ids)) == len(synsets)
    senses = {s for s, p, o in triples if p == RDF_TYPE and o == P(ONTOLEX, "LexicalSense")}
    assert len(senses) <= c["senses"] + c["boundary_senses"]
    for rel, n in c["relations"].items():
        assert sum(1 for t in triples if t[1] == P(WN, rel)) <= n  # equal unless a duplicate was dropped
    assert sum(c["relations"].values()) >= c["relations"]["hypernym"] > 0
    prov = man.extra["shards"][0]["provenance"]
    assert prov["source"] == "wordnet-3.0" and prov["wordnet_version"] == "3.0" and prov["nltk_version"]
    assert man.extra["wordnet"]["path"] and man.config["roots"] == ROOTS


def test_deterministic_across_processes(subset, tmp_path):
    """Same content hash from the CLI in another process with another string-hash seed."""
    out = tmp_path / "again"
    args = ["pull", "wordnet", "--out", str(out)] + [a for r in ROOTS for a in ("--root", r)]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    r = subprocess.run([sys.executable, "-m", "kgllm", *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "graph artifact" in r.stdout
    assert read_manifest(out).content_sha256 == read_manifest(subset).content_sha256


def test_relation_and_example_filters(wordnet, tmp_path):
    cfg = WordNetPullConfig(roots=["dog.n.01"], relations=["hypernym"], include_examples=False, pos=["n"])
    man = pull_wordnet(tmp_path / "g", cfg, wordnet=wordnet)
    preds = {p for _, p, _ in iter_graph(tmp_path / "g")}
    assert P(WN, "hypernym") in preds
    assert not preds & {P(WN, r) for r in wnmod.RELATIONS if r != "hypernym"}
    assert P(WN, "example") not in preds
    assert man.counts["relations"] == {"hypernym": man.counts["relations"]["hypernym"]}


def test_all_adverbs_exact_counts(wordnet, tmp_path):
    """Every adverb of WordNet 3.0: 3,621 synsets and 5,580 senses (WordNet 3.0's own statistics)."""
    man = pull_wordnet(tmp_path / "adv", WordNetPullConfig(pos=["r"]), wordnet=wordnet)
    assert man.counts["synsets"] == 3621
    assert man.counts["senses"] == 5580
    assert man.counts["boundary_synsets"] == 0  # no roots: no outside targets are described
    assert man.counts["relations"]["pertainym"] > 3000


def test_bad_config_names_the_key(wordnet, tmp_path, capsys):
    with pytest.raises(ConfigError, match="relations: 'hypernyms'"):
        WordNetPullConfig(relations=["hypernyms"])
    with pytest.raises(ConfigError, match="pos"):
        WordNetPullConfig(pos=["x"])
    with pytest.raises(ConfigError, match="roots: 'nosuch.n.01'"):
        pull_wordnet(tmp_path / "x", WordNetPullConfig(roots=["nosuch.n.01"]), wordnet=wordnet)
    assert main(["pull", "wordnet", "--out", str(tmp_path / "x"), "--relation", "hypernyms"]) == 2
    assert "'hypernyms' is not a WordNet relation" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_no_wordnet_found_says_how_to_install(tmp_path, monkeypatch, capsys):
    import nltk

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(nltk.data, "path", [str(empty)])
    monkeypatch.setenv("KGLLM_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(wordnet_data, "DEBIAN_WORDNET", empty)
    with pytest.raises(InputError, match="apt-get install wordnet-base"):
        open_wordnet()
    assert main(["pull", "wordnet", "--out", str(tmp_path / "g")]) == 2
    assert "WordNet 3.0 not found" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_prepared_dir_is_a_proper_nltk_wordnet(wordnet):
    """The Debian-built dir works with nltk's own reader: lexnames and index.sense are generated."""
    reader, info = wordnet
    root = Path(info["path"])
    assert (root / "lexnames").read_text().splitlines()[5] == "05\tnoun.animal\t1"
    assert wordnet_data.prepare_nltk_data() == root  # idempotent
    assert reader.lemma_from_key("dog%1:05:00::").synset().name() == "dog.n.01"
    assert reader.lemma_from_key("teachable%5:00:00:tractable:00").synset().name() == "docile.s.01"
    assert reader.lemma("dog.n.01.dog").count() > 0  # tag counts from cntlist.rev
    # all 117,659 synsets are there (one data line each; a full pull reads them all: see the benchmark)
    lines = sum(1 for pos in ("noun", "verb", "adj", "adv")
                for line in (root / f"data.{pos}").open(encoding="utf-8") if not line[0].isspace())
    assert lines == wnmod.SYNSET_COUNT == 117_659


@pytest.mark.parametrize("text", ['plain', 'a "quoted" word', 'back\\slash', 'tab\there', 'new\nline', 'café'])
def test_literals_match_pyoxigraph(text):
    import pyoxigraph

    assert literal(text, "en") == str(pyoxigraph.Literal(text, language="en"))
    assert literal(text) == str(pyoxigraph.Literal(text))


@pytest.mark.parametrize("text", ["dog%1:05:00::", "a.d.", "A/C", "o'clock%4:02:00::", "jack-o'-lantern",
                                  "café", "Prince_of_Wales", "big(a)", "1st", "ten%5:00:00:cardinal:00", "x y"])
def test_fast_quote_equals_urllib_quote(text):
    from urllib.parse import quote

    assert wnmod._quote(text) == quote(text)


def test_users_nltk_wordnet_comes_first(wordnet, tmp_path, monkeypatch):
    """A WordNet on nltk's data path (here nltk's zip layout) is used as is; nothing is built."""
    import zipfile

    import nltk

    ours = Path(wordnet[1]["path"])
    (tmp_path / "user" / "corpora").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "user" / "corpora" / "wordnet.zip", "w", zipfile.ZIP_STORED) as z:
        for f in sorted(ours.iterdir()):
            z.write(f, f"wordnet/{f.name}")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "user")])
    monkeypatch.setenv("KGLLM_HOME", str(tmp_path / "home"))
    where, origin = wordnet_data.locate_wordnet()
    assert origin == "nltk" and str(where).startswith(str(tmp_path / "user"))
    assert not (tmp_path / "home").exists()
