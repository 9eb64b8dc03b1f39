"""English rendering of RDF literals and of local names.

Takes: an N-Triples literal term (``"1974-03-31"^^<...#date>``, ``"Roma"@it``, ``"2.5E9"^^<dbpedia.org/datatype/euro>``;
parsed by :func:`kgllm.rdf.parse_literal`), or a camel-case local name (``birthPlace``).
Makes: a readable string ("31 March 1974", "Roma (Italian)", "2.5 billion euros"; "birth place").
"""

from __future__ import annotations

import re

from ..rdf import XSD, XSD_STRING, parse_literal

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_INTEGER_TYPES = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger",
                                    "negativeInteger", "nonPositiveInteger", "unsignedInt", "unsignedLong")}
_FLOAT_TYPES = {XSD + t for t in ("double", "float", "decimal")}
_DBPEDIA_DT = "http://dbpedia.org/datatype/"
# DBpedia unit datatypes (local name -> English unit). Unknown units fall back to their split local name.
_UNITS = {
    "euro": "euros", "usDollar": "US dollars", "poundSterling": "pounds sterling", "japaneseYen": "yen",
    "swissFranc": "Swiss francs", "canadianDollar": "Canadian dollars", "australianDollar": "Australian dollars",
    "indianRupee": "Indian rupees", "kilometre": "km", "metre": "metres", "centimetre": "cm", "millimetre": "mm",
    "kilogram": "kg", "gram": "g", "tonne": "tonnes", "squareKilometre": "square kilometres",
    "squareMetre": "square metres", "kilometrePerHour": "km/h", "kilowatt": "kW", "horsepower": "horsepower",
    "cubicCentimetre": "cc", "litre": "litres", "second": "seconds", "minute": "minutes", "hour": "hours",
    "day": "days", "inhabitantsPerSquareKilometre": "inhabitants per square kilometre", "mile": "miles",
    "foot": "feet", "inch": "inches", "pound": "pounds", "newtonMetre": "newton metres",
}
_CURRENCY = {"euros", "US dollars", "pounds sterling", "yen", "Swiss francs", "Canadian dollars",
             "Australian dollars", "Indian rupees"}
_LANGUAGES = {"de": "German", "fr": "French", "it": "Italian", "es": "Spanish", "nl": "Dutch", "pt": "Portuguese",
              "ru": "Russian", "ja": "Japanese", "zh": "Chinese", "pl": "Polish", "sv": "Swedish", "la": "Latin",
              "ar": "Arabic", "el": "Greek", "tr": "Turkish", "ko": "Korean", "cs": "Czech", "fi": "Finnish"}


def split_camel(name: str) -> str:
    """``birthPlace`` -> ``birth place``; ``ISBN`` stays; underscores become spaces."""
    name = name.replace("_", " ")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(w if (w.isupper() and len(w) > 1) else w.lower() for w in name.split())


def _fmt_number(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _big(x: float) -> str:
    """1.2E10 -> '12 billion'; numbers under a million as digits."""
    for div, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.1f}".rstrip("0").rstrip(".") + f" {word}"
    return _fmt_number(x)


def render_literal(term: str, language: str = "en") -> str:
    """English rendering of a literal term (see the module docstring for examples)."""
    value, lang, dt = parse_literal(term)
    value = " ".join(value.split())
    if lang is not None:
        base = lang.split("-")[0].lower()
        if base == language:
            return value
        return f"{value} ({_LANGUAGES.get(base, base)})"
    if dt is None or dt == XSD_STRING:
        return value
    try:
        if dt == XSD + "date":
            m = re.fullmatch(r"(-?\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?", value)
            if m and 1 <= int(m.group(2)) <= 12:
                return f"{int(m.group(3))} {_MONTHS[int(m.group(2)) - 1]} {int(m.group(1))}"
        elif dt == XSD + "gYear":
            y = int(value.split("-")[0] if not value.startswith("-") else value[:5])
            return str(y) if y > 0 else f"{-y} BC"
        elif dt == XSD + "gYearMonth":
            y, mo = value.split("-")[:2]
            return f"{_MONTHS[int(mo) - 1]} {int(y)}"
        elif dt == XSD + "boolean":
            return "yes" if value.strip().lower() in ("true", "1") else "no"
        elif dt in _INTEGER_TYPES:
            return _fmt_number(int(value))
        elif dt in _FLOAT_TYPES:
            return _fmt_number(float(value))
        elif dt.startswith(_DBPEDIA_DT):
            unit_name = dt[len(_DBPEDIA_DT):]
            unit = _UNITS.get(unit_name, split_camel(unit_name))
            x = float(value)
            return f"{_big(x)} {unit}" if unit in _CURRENCY else f"{_fmt_number(x)} {unit}"
    except (ValueError, IndexError):
        pass  # a malformed value is rendered as written rather than dropped
    return value
