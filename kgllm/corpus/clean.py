"""Text cleaning: markup residue and unicode normalization of free text (abstracts, glosses).

Takes: a string from a literal. Makes: the same text without HTML tags/entities and wiki markup
(``{{templates}}``, ``[[link|text]]``, ``'''bold'''``), in Unicode NFC with one space between words.
"""

from __future__ import annotations

import html
import re
import unicodedata

_REF_TAG = re.compile(r"<ref[^<>]*?(?:/>|>.*?</ref>)", re.S | re.I)  # footnotes: drop with their content
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]")
_EXTLINK = re.compile(r"\[https?://\S+\s([^\]]*)\]")
_QUOTES = re.compile(r"'{2,}")
_REF = re.compile(r"\[\d{1,3}\]")                   # footnote markers [12]
_EMPTY_PARENS = re.compile(r"\(\s*[;,]?\s*\)")
_GLUED_SENTENCE = re.compile(r"(?<=[a-z]{2})\.(?=[A-Z][a-z])")  # "Normandy.Since 1956" -> "Normandy. Since"
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    t = html.unescape(text)
    t = unicodedata.normalize("NFC", t).translate(_INVISIBLE)
    t = _REF_TAG.sub("", t)
    t = _TAG.sub(" ", t)
    for _ in range(3):  # nested templates, innermost first
        t2 = _TEMPLATE.sub("", t)
        if t2 == t:
            break
        t = t2
    t = _LINK.sub(r"\1", t)
    t = _EXTLINK.sub(r"\1", t)
    t = _QUOTES.sub("", t)
    t = _REF.sub("", t)
    t = _EMPTY_PARENS.sub("", t)
    t = _GLUED_SENTENCE.sub(". ", t)
    t = _SPACES.sub(" ", t).strip()
    return re.sub(r"\s+([,.;:])", r"\1", t)
