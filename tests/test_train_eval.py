"""Factual evaluation (kgllm eval facts) and the KG-verifiable reward, on the tiny real corpus."""

from __future__ import annotations

import json
import math

import pytest

from kgllm.eval.facts import answer_texts, score_answer
from kgllm.eval.metrics import normalize_answer, token_f1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import tiny

    from kgllm.registry import run_stage

    d = tmp_path_factory.mktemp("tiny-eval")
    corpus = tiny.write_tiny_corpus(d / "corpus")
    model = tiny.write_tiny_model(tiny.train_tiny_tokenizer(corpus, d / "tok"), d / "model")
    sft = d / "sft"
    run_stage("train.sft", [corpus], sft, {"model": str(model), "max_steps": 2, "batch_size": 4, "save_steps": 2})
    return {"corpus": corpus, "model": model, "sft": sft}


def test_answer_normalisation_and_scores():
    assert normalize_answer("The  Osnabrück!") == "osnabruck"
    assert token_f1("born in Berlin", "Berlin") == pytest.approx(0.5)
    labels = {"http://dbpedia.org/resource/Italy": "Italia"}
    assert answer_texts(["http://dbpedia.org/resource/Italy", "<http://dbpedia.org/resource/Kaleidoscope_(novel)>",
                         "1949"], labels) == ["Italia", "Kaleidoscope (novel)", "Kaleidoscope", "1949"]
    s = score_answer("Rome is in the country Italy.", ["Italy"], "Rome is in the country Italy.")
    assert s == {"exact_match": 1.0, "contains": 1.0, "f1": 1.0, "answer_f1": 1.0}
    s = score_answer("It is in Italy", ["Italy"], "Rome is in the country Italy.")
    assert s["exact_match"] == 0.0 and s["contains"] == 1.0 and 0 < s["f1"] < 1
    assert score_answer("Sweden", ["Italy"], "Rome is in Italy.")["contains"] == 0.0
    # The sentence's other words are not the answer: a wrong object scores 0 on answer_f1.
    wrong = score_answer("Rome is in the country France.", ["Italy"], "Rome is in the country Italy.")
    assert wrong["f1"] > 0.5 and wrong["answer_f1"] == 0.0


def test_kg_reward_verifies_statements_against_triples(tiny):
    from kgllm.train.data import read_split
    from kgllm.train.kg_reward import KGReward

    kg = KGReward.from_corpus(tiny["corpus"])
    v = kg.verify("Rome is in the country Italy.")
    assert v.status == "supported" and v.score == 1.0 and v.triple_id
    assert kg.verify("Rome is in the country Sweden.").status == "contradicted"
    assert kg.verify("Walter Warlimont died in Osnabrück.").status == "contradicted"  # born there, died in Kreuth
    assert kg.verify("Rome is a lovely city.").status == "unverifiable"
    # Every KG-verified preference pair of the corpus: chosen supported, rejected contradicted.
    pairs = [r for s in ("train", "validation", "test") for r in read_split(tiny["corpus"], "dpo", s)]
    assert kg([r["chosen"] for r in pairs]) == [1.0] * len(pairs)
    assert kg([[{"role": "assistant", "content": r["rejected"]}] for r in pairs]) == [-1.0] * len(pairs)


def test_eval_facts_reports_qa_preferences_perplexity(tiny, capsys, tmp_path):
    from kgllm.cli import main

    out = tmp_path / "facts.json"
    rc = main(["eval", "facts", "--model", str(tiny["model"]), "--model", str(tiny["sft"]),
               "--corpus", str(tiny["corpus"]), "--max-new-tokens", "6", "--out", str(out)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert [r["model"] for r in report["results"]] == [str(tiny["model"]), str(tiny["sft"])]
    for r in report["results"]:
        assert r["chat_format"] == "plain"
        assert r["qa"]["n"] == 2 and set(r["qa"]["by_type"]) == {"one_hop"}
        assert all(0.0 <= r["qa"][k] <= 1.0 for k in ("exact_match", "contains", "f1", "kg_supported"))
        # IRI answers are scored by their labels (rdfs:label triples of the corpus).
        assert sorted(e["answers"] for e in r["qa"]["examples"]) == [["Danielle Steel"], ["United States"]]
        assert r["preference"]["n"] == 2 and r["preference"]["accuracy"] in (0.0, 0.5, 1.0)
        assert r["perplexity"]["on"] == "pretrain/test" and math.isfinite(r["perplexity"]["value"])
        # An untrained 400-token model is near uniform: perplexity in the hundreds, not 1 and not inf.
        assert 50 < r["perplexity"]["value"] < 5000


def test_eval_facts_few_shot_shows_train_questions_and_answers(tiny, capsys):
    """--shots K: K worked examples from the train split (one per fact) before each question, never a row of
    the evaluated split; the report names them. Too few train rows, or shots from the evaluated split: errors."""
    from kgllm.cli import main
    from kgllm.errors import UsageError
    from kgllm.eval.facts import demonstrations
    from kgllm.train import data as tdata
    from kgllm.train.common import load_tokenizer

    train = tdata.read_split(tiny["corpus"], "sft", "train", 0)
    test_ids = {r["id"] for r in tdata.read_split(tiny["corpus"], "sft", "test", 0)}
    demos = demonstrations(tiny["corpus"], 2)
    assert len(demos) == 2 and all(r in train for r in demos)
    assert not {r["id"] for r in demos} & test_ids
    assert len({tuple(r["triple_ids"]) for r in demos}) == 2          # two different facts
    assert demonstrations(tiny["corpus"], 2) == demos                 # a stable choice
    with pytest.raises(UsageError, match="train rows"):
        demonstrations(tiny["corpus"], len(train) + 1)
    with pytest.raises(UsageError, match="another split"):
        demonstrations(tiny["corpus"], 1, split="train")
    # The plain format: each example a Question/Answer block, then the question.
    tok = load_tokenizer(tiny["model"])
    pairs = [(r["prompt"], r["completion"]) for r in demos]
    text = tdata.prompt_text(tok, "Who wrote Sisters?", False, pairs)
    assert text == "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in pairs) + "Question: Who wrote Sisters?\nAnswer:"
    assert tdata.prompt_text(tok, "Who wrote Sisters?", False) == "Question: Who wrote Sisters?\nAnswer:"

    assert main(["eval", "facts", "--model", str(tiny["model"]), "--corpus", str(tiny["corpus"]),
                 "--max-new-tokens", "4", "--shots", "2"]) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["shots"] == 2 and r["demonstrations"] == [d["id"] for d in demos] and r["qa"]["n"] == 2
    assert main(["eval", "facts", "--model", str(tiny["model"]), "--corpus", str(tiny["corpus"]),
                 "--shots", "-1"]) == 2
    assert "--shots must be 0 or more" in capsys.readouterr().err
