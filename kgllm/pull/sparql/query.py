"""Query analysis and rewriting: what the harvester needs to know about a SPARQL query, and the page and
COUNT queries it derives from it.

Takes: the text of a CONSTRUCT query (or of a ``SELECT ?s ?p ?o`` query: any three projected variables,
in subject/predicate/object order), or a ``.rq`` file.
Makes: a :class:`Query` (prologue, template, dataset clauses, WHERE pattern, modifiers, the variables to
order by) that writes the text of each page (:meth:`Query.paged`: an ordered sub-select, or the query
as written in the endpoint's natural order, plus LIMIT/OFFSET) and of the COUNT check
(:meth:`Query.count_query`). Errors name the query and the line. Syntax is checked with rdflib's parser
(imported only then).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

logger = logging.getLogger("kgllm.pull.sparql")

_IRIREF = re.compile(r'<[^<>"{}|^`\\\s]*>')
_VAR = re.compile(r"[?$]([A-Za-z0-9_\u00B7\u00C0-\uFFFF]+)")
_FORM = re.compile(r"\b(SELECT|CONSTRUCT|DESCRIBE|ASK)\b", re.I)
_WHERE = re.compile(r"\bWHERE\b", re.I)
_FROM = re.compile(r"\bFROM\b", re.I)
_FORBIDDEN_MODS = re.compile(r"\b(ORDER\s+BY|LIMIT|OFFSET)\b", re.I)


def _mask(text: str) -> str:
    """``text`` with comments, strings and IRIs blanked (same length), so braces and keywords
    found in the result are real syntax."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c in "\"'":
            if text.startswith(c * 3, i):
                j = i + 3
                while j < n and not text.startswith(c * 3, j):
                    j += 2 if text[j] == "\\" else 1
                j = min(n, j + 3)
            else:
                j = i + 1
                while j < n and text[j] != c and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                j = min(n, j + 1)
            blank(i + 1, j - 1)
            i = j
        elif c == "<" and (m := _IRIREF.match(text, i)):
            blank(i + 1, m.end() - 1)
            i = m.end()
        else:
            i += 1
    return "".join(out)


def _match_brace(masked: str, start: int, where: str) -> int:
    """Index just past the ``}`` closing the ``{`` at ``start``."""
    depth = 0
    for k in range(start, len(masked)):
        if masked[k] == "{":
            depth += 1
        elif masked[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    raise InputError(f"{where}: unbalanced braces in the query")


def _line_col(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return f"{line}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


@dataclass(frozen=True)
class Query:
    """A harvestable query split into the parts the harvester re-assembles.

    ``where`` is the text inside the WHERE braces; ``modifiers`` what followed it (GROUP BY, HAVING,
    VALUES; ORDER BY/LIMIT/OFFSET are refused because the harvester pages the query itself).
    """

    name: str
    text: str
    form: str                      # "CONSTRUCT" | "SELECT"
    prologue: str
    template: str                  # CONSTRUCT template (inside braces) or the SELECT projection
    dataset: str                   # FROM / FROM NAMED clauses
    where: str
    modifiers: str
    variables: tuple[str, ...]     # ordering/projection variables, without '?'
    blank_template: bool           # template has blank nodes (no COUNT check possible)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def paged(self, limit: int, offset: int, ordered: bool = True) -> str:
        """The query text of one page.

        ``ordered``: an ordered sub-select with LIMIT/OFFSET outside (see module doc), stable by the
        SPARQL semantics but the endpoint sorts the whole result for every page. Unordered: the query
        as written plus LIMIT/OFFSET, in the endpoint's natural (index) order, which is stable on an
        unchanging store and costs no sort; the COUNT check then proves the pages fitted together.
        """
        if not self.variables:  # a constant template: nothing to page
            return self.text
        v = " ".join(f"?{x}" for x in self.variables)
        if not ordered:
            head = f"CONSTRUCT {{\n{self.template}\n}}" if self.form == "CONSTRUCT" else f"SELECT {self.template}"
            return (f"{self.prologue}{head} {self.dataset}\nWHERE {{\n{self.where}\n}} {self.modifiers}\n"
                    f"LIMIT {limit} OFFSET {offset}")
        inner = f"SELECT DISTINCT {v} WHERE {{\n{self.where}\n}} {self.modifiers}\nORDER BY {v}"
        head = f"CONSTRUCT {{\n{self.template}\n}}" if self.form == "CONSTRUCT" else f"SELECT {v}"
        return (f"{self.prologue}{head} {self.dataset}\nWHERE {{ {{ {inner} }} }}\n"
                f"LIMIT {limit} OFFSET {offset}")

    def count_query(self, template_triples: list[tuple[str, str, str]] | None) -> str | None:
        """SELECT (COUNT(*) AS ?n): the number of distinct, valid triples the query yields, or None."""
        if self.form == "SELECT":
            a, b, c = (f"?{x}" for x in self.variables)
            sel = f"{{ SELECT DISTINCT {a} {b} {c} WHERE {{\n{self.where}\n}} {self.modifiers} }}"
            return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ SELECT DISTINCT {a} {b} {c} "
                    f"WHERE {{ {sel} {_valid_filter(a, b, c)} }} }} }}")
        if self.blank_template or not template_triples or not self.variables:
            return None
        v = " ".join(f"?{x}" for x in self.variables)
        sel = f"{{ SELECT DISTINCT {v} WHERE {{\n{self.where}\n}} {self.modifiers} }}"
        s, p, o = "?kgllm_s", "?kgllm_p", "?kgllm_o"
        if len(template_triples) == 1 and len(set(template_triples[0])) == 3 and all(
                t.startswith("?") for t in template_triples[0]):
            a, b, c = template_triples[0]
            body = f"{sel} {_valid_filter(a, b, c)}"
            return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ "
                    f"SELECT DISTINCT {a} {b} {c} WHERE {{ {body} }} }} }}")
        branches = " UNION ".join(
            f"{{ {sel} BIND({ts} AS {s}) BIND({tp} AS {p}) BIND({to} AS {o}) }}" for ts, tp, to in template_triples)
        return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ SELECT DISTINCT {s} {p} {o} "
                f"WHERE {{ {branches} {_valid_filter(s, p, o)} }} }} }}")


def _valid_filter(s: str, p: str, o: str) -> str:
    # The triples CONSTRUCT keeps: every position bound, subject not a literal, predicate an IRI.
    return f"FILTER(BOUND({s}) && BOUND({p}) && BOUND({o}) && !isLiteral({s}) && isIRI({p}))"


def parse_query(text: str, name: str = "query", *, validate: bool = True) -> Query:
    """Split a CONSTRUCT or ``SELECT ?s ?p ?o`` query into its parts; errors name ``name`` and the line."""
    if validate:
        _validate_syntax(text, name)
    masked = _mask(text)
    m = _FORM.search(masked)
    if not m:
        raise InputError(f"{name}: no SELECT or CONSTRUCT found; write a CONSTRUCT query or SELECT ?s ?p ?o")
    form = m.group(1).upper()
    if form not in ("CONSTRUCT", "SELECT"):
        raise InputError(f"{name}:{_line_col(text, m.start())}: {form} queries cannot be harvested; "
                         "use CONSTRUCT (or SELECT ?s ?p ?o)")
    prologue = text[: m.start()]
    pos = m.end()
    blank_template = False
    if form == "CONSTRUCT":
        k = _skip_ws(masked, pos)
        if k < len(masked) and masked[k] == "{":
            end = _match_brace(masked, k, name)
            template = text[k + 1: end - 1]
            blank_template = "_:" in masked[k:end] or "[" in masked[k:end]
            pos = end
            short = False
        else:
            template, short = "", True
    else:
        w = _WHERE.search(masked, pos)
        b = masked.find("{", pos)
        f = _FROM.search(masked, pos)
        stops = [x for x in (w.start() if w else -1, b, f.start() if f else -1) if x >= 0]
        if not stops:
            raise InputError(f"{name}: no WHERE clause found")
        stop = min(stops)
        template = text[pos:stop].strip()
        pos = stop
    brace = masked.find("{", pos)
    if brace < 0:
        raise InputError(f"{name}: no WHERE {{ ... }} clause found")
    between = text[pos:brace]
    dataset = _WHERE.sub("", between).strip() if _WHERE.search(_mask(between)) else between.strip()
    end = _match_brace(masked, brace, name)
    where = text[brace + 1: end - 1]
    modifiers = text[end:].strip()
    bad = _FORBIDDEN_MODS.search(_mask(modifiers))
    if bad:
        raise InputError(f"{name}:{_line_col(text, end + text[end:].find(modifiers) + bad.start())}: remove "
                         f"{bad.group(1).upper()}: the harvester adds its own ORDER BY/LIMIT/OFFSET to page the query")
    if form == "CONSTRUCT":
        if short:  # CONSTRUCT WHERE { pattern }: the pattern is the template
            template = where
            blank_template = "_:" in _mask(where) or "[" in _mask(where)
        variables = tuple(sorted(set(_VAR.findall(_mask(template)))))
    else:
        proj = _mask(template)
        proj_clean = re.sub(r"\b(DISTINCT|REDUCED)\b", "", proj, flags=re.I).strip()
        variables = tuple(_VAR.findall(proj_clean))
        if "*" in proj_clean or "(" in proj_clean or len(variables) != 3:
            raise InputError(f"{name}: a SELECT query must project exactly three variables, subject predicate "
                             f"object (e.g. SELECT ?s ?p ?o), not {template!r}; or use CONSTRUCT")
    return Query(name=name, text=text, form=form, prologue=prologue, template=template, dataset=dataset,
                 where=where, modifiers=modifiers, variables=variables, blank_template=blank_template)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def _validate_syntax(text: str, name: str) -> None:
    from pyparsing import ParseException
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        parseQuery(text)
    except ParseException as e:
        raise InputError(f"{name}:{e.lineno}:{e.col}: malformed SPARQL query: {e.msg} "
                         f"(set harvest.validate_query=false for endpoint-specific syntax)") from None


def template_triples(q: Query) -> list[tuple[str, str, str]] | None:
    """The CONSTRUCT template as triples of SPARQL terms (``?v``, ``<iri>``, literals), or None."""
    if q.form != "CONSTRUCT":
        return None
    try:
        from rdflib import BNode, Variable
        from rdflib.plugins.sparql import prepareQuery

        alg = prepareQuery(q.text).algebra
        out = []
        for t in alg.template or []:
            if any(isinstance(x, BNode) for x in t):
                return None
            out.append(tuple(f"?{x}" if isinstance(x, Variable) else x.n3() for x in t))
        return sorted(set(out)) or None  # sorted: the COUNT query text is deterministic
    except Exception as e:  # vendor syntax rdflib does not know: no COUNT check, said in the manifest
        logger.debug("cannot analyse the template of %s: %s", q.name, e)
        return None


def load_query(query: str | Path, name: str | None = None, *, validate: bool = True) -> Query:
    """A :class:`Query` from a ``.rq`` file (Path) or from query text (str)."""
    if isinstance(query, Path):
        if not query.exists():
            raise InputError(f"{query}: query file does not exist")
        if query.is_dir():
            raise InputError(f"{query}: is a directory, not a query file; give a .rq file")
        try:
            text = query.read_text("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{query}: query file is not UTF-8 text: {e}") from None
        return parse_query(text, name or str(query), validate=validate)
    return parse_query(query, name or "query", validate=validate)
