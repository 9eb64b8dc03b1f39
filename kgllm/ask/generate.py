"""Generated answers: a local causal LM writes the answer from the numbered retrieved facts, citing them.

Takes: a model name known to kgllm.train.models (``smollm2-135m-instruct``, prepared offline) or a local
transformers checkpoint directory (e.g. a ``kgllm train sft`` output on ``kgllm train raft-data``
examples); a question and the numbered facts (citation dicts, :func:`kgllm.ask.grounding.choose_facts`).
Makes: the model's answer text, as written (its first line). The prompt is the one the RAFT examples train
(:func:`kgllm.ask.grounding.build_prompt`, in the chat or plain format of :mod:`kgllm.train.data`, as
``train sft`` formats it), so a trained model sees at inference exactly what it learned from. The text
is not trusted: :func:`kgllm.ask.grounding.ground` checks its citations before it is shown. Greedy
decoding, so the same model, question and facts give the same text. ``answer_only=True`` decodes again
without the refusal's opening words ("not", "Not"): the retry when a refusal contradicts cited facts that
answer (kgllm.ask.answer); the text it gives is checked like any other.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require
from ..train.data import prompt_text, use_chat
from ..train.models import resolve_model
from .grounding import build_prompt


class Generator:
    def __init__(self, model: str | Path, max_new_tokens: int = 64, device: str | None = None):
        require("torch", "train")
        require("transformers", "train")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(str(model))
        self.name = str(model)
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        self.chat = use_chat(self.tok, "auto")

    def prompt(self, question: str, facts: list[dict]) -> str:
        """The exact text the model continues."""
        return prompt_text(self.tok, build_prompt(question, facts), self.chat)

    def generate(self, question: str, facts: list[dict], answer_only: bool = False) -> str:
        import torch

        enc = self.tok(self.prompt(question, facts), return_tensors="pt", add_special_tokens=not self.chat)
        enc = enc.to(self.device)
        extra = {}
        if answer_only:
            from transformers import LogitsProcessorList

            extra["logits_processor"] = LogitsProcessorList([_BanFirst(enc["input_ids"].shape[1],
                                                                       self._refusal_starts())])
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id, **extra)
        text = self.tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        return text.split("\n")[0].strip()

    def _refusal_starts(self) -> list[int]:
        """Token ids that open a refusal ("not in the graph", "Not ...", with or without a leading space)."""
        ids = {self.tok.encode(w, add_special_tokens=False)[0] for w in REFUSAL_OPENERS}
        return sorted(ids)


# The first words of the refusal the RAFT examples train (kgllm.ask.grounding.NOT_IN_GRAPH) and its variants.
REFUSAL_OPENERS = ("not", "Not", " not", " Not", "NOT")


class _BanFirst:
    """A logits processor: the given token ids cannot be the first generated token (a transformers
    ``LogitsProcessor``: called with the ids so far and the next token's scores)."""

    def __init__(self, prompt_len: int, ids: list[int]):
        self.prompt_len, self.ids = prompt_len, ids

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] == self.prompt_len:
            scores[:, self.ids] = float("-inf")
        return scores
