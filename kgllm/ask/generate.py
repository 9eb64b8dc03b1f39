"""Generated answer text: a local causal LM prompted with the cited facts (optional; extractive is the default).

Takes: a model name known to kgllm.train.models (``smollm2-135m-instruct``, prepared offline) or a local
transformers checkpoint directory (e.g. the train stage's output); a question, its cited triples and the
extractive answer.
Makes: one answer sentence. The cited triples and answer terms of the answer dict stay the extractive ones:
the model only words the answer, so every claim is still traceable to the cited facts. Greedy decoding,
so the same model and question give the same text.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require
from ..train.models import resolve_model

SYSTEM = ("Answer the question using only the numbered facts. Answer in one short sentence and cite the "
          "facts you used like [1]. If the facts do not answer the question, say: not in the graph.")


def build_prompt(question: str, citations: list[dict]) -> str:
    facts = "\n".join(f"[{c['n']}] {c['text']}" for c in citations[:10])
    return f"Facts:\n{facts}\n\nQuestion: {question}"


class Generator:
    def __init__(self, model: str | Path, max_new_tokens: int = 48, device: str | None = None):
        require("torch", "train")
        require("transformers", "train")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(str(model))
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens

    def generate(self, question: str, citations: list[dict], extractive: str) -> str:
        import torch

        prompt = build_prompt(question, citations)
        if getattr(self.tok, "chat_template", None):
            text = self.tok.apply_chat_template([{"role": "system", "content": SYSTEM},
                                                 {"role": "user", "content": prompt}],
                                                tokenize=False, add_generation_prompt=True)
        else:
            text = f"{SYSTEM}\n\n{prompt}\nAnswer:"
        enc = self.tok(text, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id)
        ans = self.tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        # A model that says nothing usable falls back to the extractive answer (never to an empty reply).
        return ans.split("\n")[0].strip() or extractive
