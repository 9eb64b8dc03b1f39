"""A tiny WordNet 3.0 graph in the pull.wordnet contract vocabulary, copied by hand from the real
WordNet 3.0 data files (Debian wordnet-base: data.noun, data.adj): dog.n.01 and its neighbours, and the
antonyms good.a.01 / bad.a.01. Used by the corpus tests until they can run stage ``pull.wordnet``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from kgllm.rdf import DC, KGWN, ONTOLEX, RDF, RDFS, WN, GraphWriter

SYNSETS = {
    # offset-pos: (identifier, lemmas, lexfile, definition, examples)
    "02084071-n": ("dog.n.01", ["dog", "domestic_dog", "Canis_familiaris"], "noun.animal",
                   "a member of the genus Canis (probably descended from the common wolf) that has been "
                   "domesticated by man since prehistoric times; occurs in many breeds", ["the dog barked all night"]),
    "02083346-n": ("canine.n.02", ["canine", "canid"], "noun.animal",
                   "any of various fissiped mammals with nonretractile claws and typically long muzzles", []),
    "01317541-n": ("domestic_animal.n.01", ["domestic_animal", "domesticated_animal"], "noun.animal",
                   "any of various animals that have been tamed and made fit for a human environment", []),
    "01322604-n": ("puppy.n.01", ["puppy"], "noun.animal", "a young dog", []),
    "02075296-n": ("carnivore.n.01", ["carnivore"], "noun.animal", "a terrestrial or aquatic flesh-eating mammal",
                   ["terrestrial carnivores have four or five clawed digits on each limb"]),
    "02085374-n": ("toy_dog.n.01", ["toy_dog", "toy"], "noun.animal",
                   "any of several breeds of very small dogs kept purely as pets", []),
    "01123148-a": ("good.a.01", ["good"], "adj.all",
                   "having desirable or positive qualities especially those suitable for a thing specified",
                   ["good news from the hospital", "a good report card"]),
    "01125429-a": ("bad.a.01", ["bad"], "adj.all", "having undesirable or negative qualities",
                   ["a bad report card", "bad luck"]),
}
HYPERNYMS = [("02084071-n", "02083346-n"), ("02084071-n", "01317541-n"), ("01322604-n", "02084071-n"),
             ("02083346-n", "02075296-n"), ("02085374-n", "02084071-n")]
# sense keys: lemma%ss_type:lex_filenum:lex_id:: from the data files' lex_id fields
SENSE_KEYS = {("dog", "02084071-n"): "dog%1:05:00::", ("domestic_dog", "02084071-n"): "domestic_dog%1:05:00::",
              ("Canis_familiaris", "02084071-n"): "canis_familiaris%1:05:00::",
              ("canine", "02083346-n"): "canine%1:05:00::", ("canid", "02083346-n"): "canid%1:05:00::",
              ("domestic_animal", "01317541-n"): "domestic_animal%1:05:00::",
              ("domesticated_animal", "01317541-n"): "domesticated_animal%1:05:00::",
              ("puppy", "01322604-n"): "puppy%1:05:00::", ("carnivore", "02075296-n"): "carnivore%1:05:00::",
              ("toy_dog", "02085374-n"): "toy_dog%1:05:00::", ("toy", "02085374-n"): "toy%1:05:01::",
              ("good", "01123148-a"): "good%3:00:01::", ("bad", "01125429-a"): "bad%3:00:00::"}
POS = {"n": "noun", "a": "adjective"}


def u(x: str) -> str:
    return f"<{x}>"


def lit(v: str, lang: str | None = "en") -> str:
    esc = v.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{esc}"@{lang}' if lang else f'"{esc}"'


def wordnet_triples() -> list[tuple[str, str, str]]:
    t = []
    for key, (ident, lemmas, lexfile, definition, examples) in SYNSETS.items():
        s = u(KGWN + key)
        t += [(s, u(RDF + "type"), u(ONTOLEX + "LexicalConcept")), (s, u(RDF + "type"), u(WN + "Synset")),
              (s, u(WN + "partOfSpeech"), u(WN + POS[key[-1]])), (s, u(DC + "identifier"), lit(ident, None)),
              (s, u(RDFS + "label"), lit(lemmas[0].replace("_", " "))), (s, u(WN + "definition"), lit(definition)),
              (s, u(WN + "lexfile"), lit(lexfile, None))]
        t += [(s, u(WN + "example"), lit(e)) for e in examples]
        for lemma in lemmas:
            entry = u(KGWN + "entry/" + quote(lemma) + "-" + key[-1])
            sense = u(KGWN + "sense/" + quote(SENSE_KEYS[(lemma, key)]))
            word = lemma.replace("_", " ")
            t += [(entry, u(RDF + "type"), u(ONTOLEX + "LexicalEntry")),
                  (entry, u(ONTOLEX + "canonicalForm"), u(entry[1:-1] + "#form")),
                  (u(entry[1:-1] + "#form"), u(ONTOLEX + "writtenRep"), lit(word)),
                  (entry, u(RDFS + "label"), lit(word)), (entry, u(ONTOLEX + "sense"), sense),
                  (sense, u(RDF + "type"), u(ONTOLEX + "LexicalSense")),
                  (sense, u(ONTOLEX + "isLexicalizedSenseOf"), s)]
    for a, b in HYPERNYMS:
        t += [(u(KGWN + a), u(WN + "hypernym"), u(KGWN + b)), (u(KGWN + b), u(WN + "hyponym"), u(KGWN + a))]
    good, bad = (u(KGWN + "sense/" + quote(k)) for k in ("good%3:00:01::", "bad%3:00:00::"))
    t += [(good, u(WN + "antonym"), bad), (bad, u(WN + "antonym"), good)]
    return t


def write_wordnet_graph(out: Path) -> Path:
    with GraphWriter(out, config={"source": "hand-copied WordNet 3.0 subset"}) as g:
        g.add_all(wordnet_triples(), {"source": "wordnet", "note": "hand-copied subset of WordNet 3.0"})
    return out
