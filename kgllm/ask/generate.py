"""Generated answers: a local causal LM writes the answer from the numbered retrieved facts, citing them.

Takes: a model name known to kgllm.train.models (``smollm2-135m-instruct``, prepared offline) or a local
transformers checkpoint directory (e.g. a ``kgllm train sft`` output on ``kgllm train raft-data``
examples); a question and the numbered facts (citation dicts, :func:`kgllm.ask.grounding.choose_facts`).
Makes: the model's answer text, as written (its first line). The prompt is the one the RAFT examples train
(:func:`kgllm.ask.grounding.build_prompt`, in the chat or plain format of :mod:`kgllm.train.data`, as
``train sft`` formats it), so a trained model sees at inference exactly what it learned from. The text
is not trusted: :func:`kgllm.ask.grounding.ground` checks its citations before it is shown. Greedy
decoding, so the same model, question and facts give the same text. ``answer_only=True`` decodes again
without the refusal: the retry when a refusal contradicts cited facts that answer (kgllm.ask.answer); the
text it gives is checked like any other.

Constrained decoding (``constrained=True``): at each step the most likely token that keeps the text a
prefix of an :class:`kgllm.ask.grounding.AnswerGrammar` text is taken, so the model chooses which shown
facts answer and how many, but every name it writes is a shown fact's label, every citation is a shown
fact's number, and the text ends only where an answer is whole. Whether to answer at all is decided on
the probability of each branch in all (the refusal's first tokens against every answer's first tokens),
not on the single most likely token: a model that spreads its answer over several labels still answers.
``constrained=False`` decodes freely (the model's own text); ``answer_only`` then bans the refusal's opening words ("not", "Not") at the first
position. The default (``None``, ``--decoding auto``) is constrained for a model trained on RAFT examples
(a kgllm model artifact with a ``corpus.raft`` input: it has learned to choose among the facts in that
form) and free for any other (the base model: forced into the form, it names facts that do not answer,
where its free text fails the check and falls back to the extractive answer).
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import read_manifest
from ..errors import ArtifactError, require
from ..train.data import prompt_text, use_chat
from ..train.models import resolve_model
from .grounding import NOT_IN_GRAPH, AnswerGrammar, build_prompt


class Generator:
    def __init__(self, model: str | Path, max_new_tokens: int = 64, device: str | None = None,
                 constrained: bool | None = None):
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
        self.constrained = raft_trained(model) if constrained is None else constrained
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tok.eos_token_id
        self.eos_ids = sorted({int(x) for x in (eos if isinstance(eos, (list, tuple)) else [eos]) if x is not None})
        self.token_bytes = _token_bytes(self.tok) if self.constrained else None

    def prompt(self, question: str, facts: list[dict]) -> str:
        """The exact text the model continues."""
        return prompt_text(self.tok, build_prompt(question, facts), self.chat)

    def generate(self, question: str, facts: list[dict], answer_only: bool = False,
                 linked: list[str] | set[str] = ()) -> str:
        """The model's answer to ``question`` from the numbered ``facts`` (``linked``: N-Triples terms of the
        entities the question names, which the constrained decoder does not offer as answers)."""
        import torch
        from transformers import LogitsProcessorList

        grammar = AnswerGrammar(facts, question, linked, refuse=not answer_only) if self.constrained else None
        if grammar is not None and not grammar.items:
            # No shown fact can answer: the grammar holds the refusal alone, or (the retry) no text at all.
            return "" if answer_only else NOT_IN_GRAPH
        enc = self.tok(self.prompt(question, facts), return_tensors="pt", add_special_tokens=not self.chat)
        enc = enc.to(self.device)
        plen = enc["input_ids"].shape[1]
        extra = {}
        if grammar is not None:
            extra["logits_processor"] = LogitsProcessorList([_Constrain(plen, grammar, self.tok, self.eos_ids,
                                                                        self.token_bytes)])
        elif answer_only:
            extra["logits_processor"] = LogitsProcessorList([_BanFirst(plen, self._refusal_starts())])
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id, **extra)
        text = self.tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        return text.split("\n")[0].strip()

    def _refusal_starts(self) -> list[int]:
        """Token ids that open a refusal ("not in the graph", "Not ...", with or without a leading space)."""
        ids = {self.tok.encode(w, add_special_tokens=False)[0] for w in REFUSAL_OPENERS}
        return sorted(ids)


# How a model's answer is decoded (Generator's ``constrained``: None, True, False): the CLI's --decoding choices.
DECODINGS = {"auto": None, "constrained": True, "free": False}


def raft_trained(model: str | Path) -> bool:
    """Whether ``model`` is a kgllm model artifact trained on RAFT examples (an input of kind ``corpus.raft``)."""
    try:
        inputs = read_manifest(model).inputs
    except (ArtifactError, KeyError, ValueError):   # a model name, a plain checkpoint, an odd manifest
        return False
    return any(isinstance(i, dict) and i.get("kind") == "corpus.raft" for i in inputs)

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


class _Constrain:
    """A logits processor for greedy decoding constrained to an :class:`AnswerGrammar`: of the next token's
    candidates, best first, the first that writes something and keeps the decoded text viable stays and
    every other is masked; an end-of-text token is viable where the text is complete. The ``TOP`` best are
    tried first; past them a complete text ends, and any other scans the rest of the vocabulary (a
    byte-level vocabulary always holds the next character). ``token_bytes``: :func:`_token_bytes`."""

    TOP = 64

    def __init__(self, prompt_len: int, grammar: AnswerGrammar, tok, eos_ids: list[int],
                 token_bytes: list[bytes | None] | None):
        self.prompt_len, self.grammar, self.tok, self.eos = prompt_len, grammar, tok, sorted(eos_ids)
        self.vocab = len(tok)
        self.special = set(tok.all_special_ids) - set(eos_ids)    # padding, unknown...: they write nothing
        self.bytes = token_bytes

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            pick = self._pick(input_ids[row, self.prompt_len:].tolist(), scores[row])
            keep = scores[row, pick].clone()
            scores[row] = float("-inf")
            scores[row, pick] = keep
        return scores

    def _pick(self, done: list[int], row) -> int:
        import torch

        now = self._text(done)
        complete = now is not None and self.grammar.state(*now)[1]
        order = torch.argsort(row, descending=True).tolist()
        if now is not None and all(self.grammar.branches(*now)):
            pick = self._answer_or_refuse(done, now, row, order[:self.TOP])
            if pick is not None:
                return pick
        for k, cand in enumerate(order):
            if k == self.TOP and complete and self.eos:
                return self.eos[0]
            if cand in self.eos:
                if complete:
                    return cand
            elif cand < self.vocab and cand not in self.special:
                text = self._text(done + [cand])
                if text is not None and text != now and "\n" not in text[0] and self.grammar.state(*text)[0]:
                    return cand
        return self.eos[0] if self.eos else int(row.argmax())   # nothing viable: stop; the check judges it

    def _answer_or_refuse(self, done: list[int], now: tuple[str, bytes], row, top: list[int]) -> int | None:
        """Where the text can still become the refusal or an answer (at the start): the branch that the
        ``top`` candidates give more probability in all, and its most likely token. Token by token, greedy
        decoding would refuse whenever the refusal's first token beats each answer's first token alone,
        though the answers together are more likely (the model spreads them over several labels). A
        candidate that keeps both open, when it is the most likely viable one, defers the choice; None when
        no candidate decides (the plain greedy pick then stands)."""
        import torch

        probs = torch.softmax(row.float(), dim=-1)
        mass, best = [0.0, 0.0], [None, None]      # refusal, answer
        for cand in top:
            if cand in self.eos or cand >= self.vocab or cand in self.special:
                continue
            text = self._text(done + [cand])
            if text is None or text == now or "\n" in text[0]:
                continue
            refusal, answer = self.grammar.branches(*text)
            if refusal and answer:
                if best == [None, None]:
                    return cand
                continue
            if refusal or answer:
                k = 0 if refusal else 1
                mass[k] += float(probs[cand])
                best[k] = cand if best[k] is None else best[k]
        if best[0] is None or best[1] is None:
            return best[0] if best[1] is None else best[1]
        return best[0] if mass[0] > mass[1] else best[1]

    def _text(self, ids: list[int]) -> tuple[str, bytes] | None:
        """The decoded text and the first bytes of a multi-byte character split over tokens that follow it;
        None for bytes that are no UTF-8 text. With a byte-level vocabulary the bytes are the tokens' own;
        with another, a character is taken whole only (a U+FFFD decoded is no text)."""
        if self.bytes is None:
            text = self.tok.decode(ids, skip_special_tokens=True)
            return None if "\ufffd" in text else (text, b"")
        raw = b"".join(self.bytes[i] or b"" for i in ids)
        for k in range(min(4, len(raw) + 1)):
            try:
                return raw[: len(raw) - k].decode("utf-8"), raw[len(raw) - k:]
            except UnicodeDecodeError:
                continue
        return None


def _token_bytes(tok) -> list[bytes | None] | None:
    """Each token's bytes for a byte-level BPE vocabulary (GPT-2's byte-to-character alphabet; SmolLM2's),
    None for special and added tokens; None for any other kind of vocabulary."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None or type(backend.decoder).__name__ != "ByteLevel":
        return None
    try:
        from transformers.convert_slow_tokenizer import bytes_to_unicode
    except ImportError:         # moved: characters are then taken whole only
        return None
    back = {c: b for b, c in bytes_to_unicode().items()}
    added = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}) or {})
    out: list[bytes | None] = []
    for i, t in enumerate(tok.convert_ids_to_tokens(list(range(len(tok))))):
        ok = i not in added and t is not None and all(c in back for c in t)
        out.append(bytes(back[c] for c in t) if ok else None)
    return out
