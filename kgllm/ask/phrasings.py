"""Question phrasings per predicate: how people ask for a relation.

Takes: the corpus stage's curated lexicon (kgllm.corpus.lexicon: label, sentence and question phrasings of
common DBpedia and WordNet predicates) and the WordNet/RDFS phrasings below.
Makes: :func:`curated_phrasings`, ``predicate IRI -> [phrasings]`` ("Where was {s} born?"), which the
relation matcher (kgllm.ask.relations) matches questions against and the question-set generator
(kgllm.eval.question_sets) words its questions with. Light: no numpy, no index.
"""

from __future__ import annotations

from functools import lru_cache

from ..corpus.lexicon import curated
from ..rdf import DBO, DBP, DC, FOAF, RDFS, SKOS, WN

# Phrasings for vocabularies the corpus lexicon does not cover (WordNet), with the wh-word they answer.
EXTRA = {
    WN + "definition": ["What does {s} mean?", "What is the definition of {s}?", "Define {s}.", "Explain {s}.",
                        "What is the meaning of {s}?", "what is meant by {s}", "gloss of {s}"],
    WN + "hypernym": ["What is {s} a kind of?", "What kind of thing is {s}?", "{s} is a type of what?",
                      "What is the hypernym of {s}?", "What category does {s} belong to?",
                      "broader concept of {s}", "What is a {s} a sort of?"],
    WN + "hyponym": ["What are the kinds of {s}?", "What are the hyponyms of {s}?", "What types of {s} are there?",
                     "Which kinds of {s} exist?", "narrower concepts of {s}"],
    WN + "example": ["Give an example sentence of {s}.", "How is {s} used in a sentence?", "usage example of {s}"],
    WN + "antonym": ["What is the opposite of {s}?", "What is the antonym of {s}?"],
    WN + "mero_part": ["What are the parts of {s}?", "What parts does {s} have?"],
    WN + "holo_part": ["What is {s} a part of?", "What whole is {s} part of?"],
    WN + "mero_member": ["What are the members of {s}?"],
    WN + "holo_member": ["What is {s} a member of?", "What group does {s} belong to?"],
    WN + "instance_hypernym": ["What is {s} an instance of?", "What kind of thing is {s}?"],
    RDFS + "comment": ["What is {s}?", "Describe {s}.", "Tell me about {s}."],
    DC + "identifier": ["What is the identifier of {s}?"],
    SKOS + "definition": ["What is the definition of {s}?", "What does {s} mean?"],
    # Names: "Which company is officially called X?" asks for the thing with this name.
    FOAF + "name": ["What is {s} called?", "What is the name of {s}?", "What is {s} officially named?"],
    DBP + "name": ["What is {s} called?", "What is the name of {s}?"],
    FOAF + "nick": ["What is {s} nicknamed?", "What is the nickname of {s}?", "What is {s} known as?"],
    DBP + "nickname": ["What is {s} nicknamed?", "What is the nickname of {s}?", "What is {s} known as?"],
    DBO + "alias": ["What is {s} also known as?", "What is another name for {s}?", "What else is {s} called?"],
}


@lru_cache(maxsize=1)
def curated_phrasings() -> dict[str, list[str]]:
    """``predicate IRI -> [phrasings]`` from the corpus stage's curated lexicon and :data:`EXTRA`."""
    out: dict[str, list[str]] = {k: list(v) for k, v in EXTRA.items()}
    for k, v in sorted((term[1:-1], v) for term, v in curated().items()):
        if not isinstance(v, dict):
            continue
        phr = [v.get("label", ""), v.get("sentence", "")] + list(v.get("questions", []))
        out.setdefault(k, []).extend(p for p in phr if p)
    return out
