"""SPARQL templates for the question shapes a graph answers exactly, with safe parameter insertion.

Takes: a template name (a file ``queries/ask/NAME.rq``) and its parameters, each a value to insert as an IRI
or as a literal; an embedded pyoxigraph store (:func:`kgllm.rdf.load_store`) or a SPARQL endpoint URL.
Makes: the query text (:class:`QueryTemplate`), and its result rows as dicts of N-Triples term strings.

A template's header comments declare its parameters (``# param NAME: iri|literal``) and the body refers to
them as ``{{NAME}}``. Values are never pasted as text: an IRI is checked against the SPARQL ``IRIREF``
grammar and rejected if it holds any character that could end it (``<>"{}|^`\\``, spaces, controls); a
literal is written as a quoted string with every quote, backslash and line break escaped, its language tag
or datatype checked too. Placeholders are filled in one pass, so a value that itself contains ``{{x}}`` is
inserted verbatim. Together this means a question can never change the shape of a query (see
tests/test_ask_sparql.py for injection attempts).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, UsageError
from ..rdf import XSD_STRING, iri, is_literal, literal, parse_literal
from ..resources import bundled

TEMPLATES_DIR = bundled("queries/ask")

# SPARQL 1.1 IRIREF: '<' ([^<>"{}|^`\]-[#x00-#x20])* '>'
_IRI_OK = re.compile(r'^[^<>"{}|^`\\\x00-\x20]*$')
_LANG_OK = re.compile(r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")
_PARAM = re.compile(r"^#\s*param\s+(\w+)\s*:\s*(iri|literal)\b", re.M)
_SLOT = re.compile(r"\{\{(\w+)\}\}")
# SPARQL's string escapes (ECHAR); the same characters as N-Triples', but this is query text, not data.
_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


class UnsafeValue(UsageError):
    """A value that cannot be inserted into a query safely (it is refused, not repaired)."""


def sparql_iri(value: str) -> str:
    """``http://x/y`` or ``<http://x/y>`` -> ``<http://x/y>``; raise :class:`UnsafeValue` for anything that
    could break out of the IRI."""
    v = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    if not v or not _IRI_OK.fullmatch(v):
        raise UnsafeValue(f"refusing to insert {value!r} into SPARQL as an IRI: it contains characters that "
                          "IRIs may not hold (<>\"{}|^`\\, spaces or controls)")
    return iri(v)


def sparql_literal(text: str, lang: str | None = None, datatype: str | None = None) -> str:
    """A quoted SPARQL string literal with every special character escaped."""
    if lang and datatype:
        raise UnsafeValue("a literal has a language tag or a datatype, not both")
    body = "".join(_ESC.get(c, c) for c in text)
    if lang:
        if not _LANG_OK.fullmatch(lang):
            raise UnsafeValue(f"refusing to insert language tag {lang!r} into SPARQL")
        return f'"{body}"@{lang}'
    if datatype:
        return f'"{body}"^^{sparql_iri(datatype)}'
    return f'"{body}"'


def literal_from_nt(term: str) -> str:
    """Re-escape an N-Triples literal term (as found in the graph) for a query."""
    value, lang, dt = parse_literal(term)
    return sparql_literal(value, lang=lang, datatype=None if lang or dt in (None, XSD_STRING) else dt)


def _literal(v: str) -> str:
    """An N-Triples literal term keeps its language/datatype; any other text becomes a plain string."""
    if is_literal(v):
        try:
            return literal_from_nt(v)
        except (SyntaxError, ValueError):
            pass  # not a literal term: the text itself (quotes included) is the value
    return sparql_literal(v)


@dataclass(frozen=True)
class QueryTemplate:
    name: str
    text: str
    params: dict[str, str]   # name -> "iri" | "literal"
    path: Path

    def render(self, **values: str) -> str:
        """Fill the slots: IRIs by :func:`sparql_iri`; literals given as N-Triples literal terms (``"x"@en``)
        keep their tag, any other text becomes a plain string literal; both fully escaped."""
        missing = sorted(set(self.params) - set(values))
        extra = sorted(set(values) - set(self.params))
        if missing or extra:
            raise UsageError(f"{self.path}: template {self.name} takes parameters {sorted(self.params)}; "
                             f"missing {missing}, unknown {extra}")
        safe = {}
        for k, v in values.items():
            if self.params[k] == "iri":
                safe[k] = sparql_iri(v)
            else:
                safe[k] = _literal(v)
        return _SLOT.sub(lambda m: safe[m.group(1)], self.text)


def load_template(name: str, directory: str | Path | None = None) -> QueryTemplate:
    d = Path(directory) if directory else TEMPLATES_DIR
    p = d / f"{name}.rq"
    if not p.exists():
        have = ", ".join(sorted(x.stem for x in d.glob("*.rq"))) or "none"
        raise UsageError(f"no SPARQL template {p}; templates in {d}: {have}")
    text = p.read_text("utf-8")
    params = {m.group(1): m.group(2) for m in _PARAM.finditer(text)}
    used = set(_SLOT.findall(text))
    if used != set(params):
        raise InputError(f"{p}: slots {sorted(used)} do not match the declared parameters {sorted(params)}")
    return QueryTemplate(name, text, params, p)


class SparqlRunner:
    """Run templates on an embedded pyoxigraph store or on a SPARQL endpoint (same rows either way).

    ``store``: a pyoxigraph ``Store``, or a function that builds one, called at the first query (so that
    an answerer that never runs a template, vector-only, never loads its triples into a store)."""

    def __init__(self, store=None, endpoint: str | None = None, templates_dir: str | Path | None = None,
                 timeout: float = 30.0):
        if (store is None) == (endpoint is None):
            raise UsageError("SparqlRunner needs exactly one of a store or an endpoint URL")
        self.store = store
        self.endpoint = endpoint
        self.timeout = timeout
        self.templates_dir = templates_dir
        self._cache: dict[str, QueryTemplate] = {}
        self.last_query: str | None = None

    def template(self, name: str) -> QueryTemplate:
        if name not in self._cache:
            self._cache[name] = load_template(name, self.templates_dir)
        return self._cache[name]

    def run(self, name: str, **values: str) -> list[dict[str, str]]:
        q = self.template(name).render(**values)
        self.last_query = q
        return self.select(q)

    def local_store(self):
        """The embedded pyoxigraph store, built now if this is its first use; None on an endpoint."""
        if self.store is not None and not hasattr(self.store, "query"):
            self.store = self.store()  # built on first use
        return self.store

    def select(self, query: str) -> list[dict[str, str]]:
        """Rows of a SELECT query as ``{variable: N-Triples term}`` (unbound variables left out)."""
        store = self.local_store()
        if store is not None:
            res = store.query(query)
            names = [v.value for v in res.variables]
            return [{n: str(row[n]) for n in names if row[n] is not None} for row in res]
        return self._endpoint_select(query)

    def _endpoint_select(self, query: str) -> list[dict[str, str]]:
        data = urllib.parse.urlencode({"query": query}).encode()
        req = urllib.request.Request(self.endpoint, data=data, headers={
            "Accept": "application/sparql-results+json", "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                doc = json.loads(r.read().decode("utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"SPARQL endpoint {self.endpoint}: query failed ({e}); is it running?") from e
        return [{k: _json_term(v) for k, v in b.items()} for b in doc.get("results", {}).get("bindings", [])]


def _json_term(v: dict) -> str:
    """A SPARQL JSON results term as an N-Triples term string."""
    t = v.get("type")
    if t == "uri":
        return iri(v["value"])
    if t == "bnode":
        return f"_:{v['value']}"
    lang = v.get("xml:lang")
    return literal(v["value"], lang=lang, datatype=None if lang else v.get("datatype"))
