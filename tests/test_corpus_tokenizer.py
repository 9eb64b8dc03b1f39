"""Byte-level BPE tokenizer trained on a real corpus artifact; loaded back with transformers."""

from __future__ import annotations

import json

import pytest
from test_corpus_wordnet_data import write_wordnet_graph


@pytest.mark.slow
def test_train_tokenizer_round_trip(tmp_path, dbpedia_graph):
    from transformers import AutoTokenizer

    from kgllm.artifacts import read_manifest
    from kgllm.cli import main
    from kgllm.registry import run_stage

    wn = write_wordnet_graph(tmp_path / "wn")
    run_stage("corpus", [dbpedia_graph, wn], tmp_path / "corpus", {"include_abstracts": True})
    assert main(["train", "tokenizer", "--corpus", str(tmp_path / "corpus"), "--vocab-size", "600",
                 "--out", str(tmp_path / "tok")]) == 0
    man = read_manifest(tmp_path / "tok", "tokenizer")
    assert man.counts["vocab_size"] == 600 and man.counts["texts"] > 1000
    assert (tmp_path / "tok" / "tokenizer.json").exists() and (tmp_path / "tok" / "tokenizer_config.json").exists()

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>" and len(tok) == 600
    for text in ("British Airways has its hub at Heathrow Airport.", "Järvenpää, Finland: 中国货运航空 ✈ 3,500 km",
                 "dog (noun): a member of the genus Canis"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # learned merges: frequent corpus words are single tokens, so text compresses well below bytes
    sample = json.loads((tmp_path / "corpus" / "pretrain" / "train.jsonl").read_text().splitlines()[0])["text"]
    assert len(tok(sample)["input_ids"]) < len(sample.encode()) / 2.5
