"""WebNLG template verbalizer: delexicalisation, verbalize JSONL, `kgllm eval webnlg` on real dev entries."""

from __future__ import annotations

import json
import lzma
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kgllm.corpus import verbalize

DEV = Path(__file__).resolve().parent.parent / "examples" / "data" / "webnlg" / "dev.xml.xz"


@pytest.fixture(scope="module")
def small_dev(tmp_path_factory) -> Path:
    """The first 12 dev entries of each triple-set size (84 real entries) as one XML file."""
    root = ET.fromstring(lzma.decompress(DEV.read_bytes()))
    keep, seen = [], {}
    for e in root.iter("entry"):
        size = e.get("size")
        if seen.get(size, 0) < 12:
            seen[size] = seen.get(size, 0) + 1
            keep.append(e)
    out = ET.Element("benchmark")
    entries = ET.SubElement(out, "entries")
    entries.extend(keep)
    path = tmp_path_factory.mktemp("webnlg") / "small.xml"
    path.write_bytes(ET.tostring(out, encoding="utf-8"))
    return path


def test_delexicalise_and_fill():
    ents = ["Abilene_Regional_Airport", "Abilene,_Texas"]
    t = verbalize.delexicalise("Abilene, Texas is served by the Abilene regional airport.", ents)
    assert t == "{1} is served by the {0}."
    assert verbalize.fill(t, ents) == "Abilene, Texas is served by the Abilene Regional Airport."
    # accents and dashes do not matter; an entity that is not mentioned gives no template
    assert verbalize.delexicalise("Adolfo Suarez Madrid-Barajas Airport is in Spain.",
                               ["Adolfo_Suárez_Madrid–Barajas_Airport", "Spain"]) == "{0} is in {1}."
    assert verbalize.delexicalise("It is in Spain.", ["Adolfo_Suárez_Madrid–Barajas_Airport", "Spain"]) is None
    key, order = verbalize.canonical([("B", "q", "C"), ("A", "p", "B")])
    assert key == "p:0>1;q:1>2" and order == ["A", "B", "C"]
    assert verbalize.leaks_names("{0} is from the Nationwide in {1}.")
    assert not verbalize.leaks_names("{0} is in {1}. It is.")


def test_shipped_templates_verbalize_seen_and_unseen_sets():
    v = verbalize.TemplateVerbalizer()
    assert len(v.templates) > 2000
    text = v.verbalize([("Alan_Bean", "birthPlace", "Wheeler,_Texas")])
    assert "Alan Bean" in text and "Wheeler, Texas" in text
    # a predicate WebNLG never saw: the lexicon's label fallback, still grounded in the triple
    text = v.verbalize([("Alan_Bean", "favouriteColour", "Blue"), ("Alan_Bean", "birthPlace", "Wheeler,_Texas")])
    assert "favourite colour" in text and "Blue" in text and "Wheeler, Texas" in text


def test_eval_webnlg_cli(small_dev, tmp_path, capsys):
    from kgllm.cli import main

    out = tmp_path / "report.json"
    assert main(["eval", "webnlg", "--xml", str(small_dev), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ALL" in printed and "BLEU" in printed
    report = json.loads(out.read_text())
    assert report["entries"] == 84 and len(report["predictions"]) == 84
    assert set(report["categories"]) >= {"Airport", "Astronaut"}
    # templates learned on train only; these dev entries score well above a copy of the inputs
    assert report["bleu"] > 0.35 and report["chrf++"] > 0.6
    assert sum(c["entries"] for c in report["categories"].values()) == 84


def test_verbalize_jsonl_cli(tmp_path):
    from kgllm.cli import main

    inp = tmp_path / "in.jsonl"
    inp.write_text(
        json.dumps({"id": "a", "triples": ["Alan_Bean | birthPlace | Wheeler,_Texas"]}) + "\n"
        + json.dumps({"id": "b", "triples": [["<http://dbpedia.org/resource/British_Airways>",
                                               "<http://dbpedia.org/ontology/hubAirport>",
                                               "<http://dbpedia.org/resource/Heathrow_Airport>"]]}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["verbalize", "--jsonl", str(inp), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert "Wheeler, Texas" in rows[0]["text"]
    assert "British Airways" in rows[1]["text"] and "Heathrow Airport" in rows[1]["text"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "triples": ["only | two"]}\n')
    assert main(["verbalize", "--jsonl", str(bad), "--out", str(tmp_path / "x.jsonl")]) == 2


def test_eval_webnlg_leave_categories_out_cli(small_dev, tmp_path, capsys):
    """--train: each fold's categories are left out of template learning and scored alone."""
    from kgllm.cli import main

    out = tmp_path / "lco.json"
    assert main(["eval", "webnlg", "--xml", str(small_dev), "--train", str(small_dev), "--folds", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fold 0:" in printed and "fold 1:" in printed and "mean of 2 folds" in printed
    report = json.loads(out.read_text())
    folds = report["folds"]
    assert len(folds) == 2 and not set(folds[0]["categories"]) & set(folds[1]["categories"])
    assert sum(f["entries"] for f in folds) == 84  # every entry is scored once, in its category's fold
    assert all(0 < f["bleu"] < 1 for f in folds)
    assert main(["eval", "webnlg", "--xml", str(small_dev), "--train", str(tmp_path / "nope.xml")]) == 2
    assert main(["eval", "webnlg", "--xml", str(small_dev), "--train", str(small_dev), "--folds", "1"]) == 2


def test_one_relation_with_several_objects_is_said_once():
    # No learned template for the pair: each fact alone, then joined ("... is A and B", not the relation twice).
    v = verbalize.TemplateVerbalizer({"club:0>1": ["{0} plays for {1}.", 5]})
    text = v.verbalize([("Aaron_Turner", "club", "Twilight_(band)"), ("Aaron_Turner", "club", "Greymachine"),
                        ("Aaron_Turner", "club", "Sumac_(band)")])
    assert text == "Aaron Turner plays for Twilight, Greymachine and Sumac."
    # Different subjects, or different relations, stay apart.
    two = v.verbalize([("A_b", "club", "C_d"), ("E_f", "club", "G_h")])
    assert two.count("plays for") == 2
