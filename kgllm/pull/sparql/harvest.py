"""The harvester: a SPARQL query, page by page, from an endpoint into a graph artifact.

Takes: an endpoint (an HTTP URL, or an embedded pyoxigraph store), a CONSTRUCT query (or a
``SELECT ?s ?p ?o`` query: any three projected variables, in subject/predicate/object order) and a
:class:`HarvestConfig`.
Makes: a graph artifact (kind ``graph``, see :mod:`kgllm.rdf`): one gzip N-Triples shard per page, each
with provenance ``{source: sparql, endpoint, query, query_sha256, page, offset, limit, retrieved_at}``;
the manifest keeps the query text, the paged and COUNT query texts, the endpoint's row cap and the
request/retry/truncation counts.

How a query is harvested
  * Paging, two orders (``HarvestConfig.order``). *Ordered*: the WHERE clause is wrapped as an ordered
    sub-select, ``CONSTRUCT {T} WHERE { { SELECT DISTINCT <template vars> WHERE {W} ORDER BY <template
    vars> } } LIMIT n OFFSET k`` (the sub-select form is what Virtuoso needs to sort past its row cap; a
    plain ``ORDER BY ... OFFSET`` beyond ResultSetMaxRows fails with SR353). Ordering by the template
    variables is a total order on what the template can produce, so pages neither overlap nor skip,
    but the endpoint sorts the whole result for every page (quadratic: 200k triples take minutes).
    *Natural*: ``CONSTRUCT {T} WHERE {W} LIMIT n OFFSET k`` in the endpoint's index order, no sort;
    stable on an unchanging store, and the COUNT check proves it. The default, *auto*, pages in
    natural order when a COUNT check is possible and starts over ordered if the check then fails.
  * Row cap and truncation: Virtuoso (and DBpedia, 10,000 rows) silently truncates results to its cap
    and answers HTTP 200. A page never asks for more than ``cap - 1`` solutions; a page that comes back
    with ``cap`` or more rows (CONSTRUCT templates with several triples per solution), or an
    ``X-SPARQL-MaxRows`` header lower than the page, is treated as truncated: the page is halved and
    fetched again, so no triple is lost.
  * Faults: 5xx, timeouts, connection refusals/resets and truncated bodies are retried with exponential
    backoff and full jitter; ``Retry-After`` is honoured on 405/429/503. Requests are spaced to
    ``rate`` per second when set.
  * Resume: pages are written to ``.OUT.harvest/`` beside the output and a checkpoint is replaced
    atomically after each page; ``resume=True`` continues after a crash with no page fetched twice
    into the result and none skipped.
  * COUNT check: where the template has no blank nodes, the endpoint is asked for the number of
    distinct triples the query yields; a mismatch with the harvested count is an error.
  * Zero triples is an :class:`EmptyResultError` (exit 1, nothing written, the work directory removed)
    unless ``allow_empty`` (``--allow-empty``): then a warning.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ...artifacts import atomic_open, atomic_write_json
from ...errors import EmptyResultError, InputError, UsageError
from ...log import progress
from ...rdf import GraphWriter
from .config import HarvestConfig
from .endpoint import HttpEndpoint, Response, StoreEndpoint, _Retryable
from .query import Query, load_query, template_triples

logger = logging.getLogger("kgllm.pull.sparql")

CHECKPOINT = "checkpoint.json"
CHECKPOINT_VERSION = 2  # 2: the state records its page order ("mode")


class _Pacer:
    """Retries with backoff/jitter and request spacing; counts attempts."""

    def __init__(self, config: HarvestConfig, endpoint_label: str, sleep: Callable[[float], None] = time.sleep):
        self.c = config
        self.label = endpoint_label
        self.sleep = sleep
        self.requests = 0
        self.retries = 0
        self.waited_s = 0.0
        self._last = 0.0
        self._rng = random.Random()

    def call(self, fn: Callable[[], Response], what: str) -> Response:
        attempt = 0
        while True:
            if self.c.rate > 0:
                gap = 1.0 / self.c.rate - (time.monotonic() - self._last)
                if gap > 0:
                    self.sleep(gap)
            self._last = time.monotonic()
            self.requests += 1
            try:
                return fn()
            except _Retryable as e:
                if attempt >= self.c.retries:
                    raise InputError(f"{self.label}: {what} failed after {attempt + 1} attempt(s): {e}; is the "
                                     "endpoint reachable and up? (raise harvest.retries/timeout, or rerun "
                                     "with --resume to continue)") from None
                if e.retry_after is not None:
                    if e.retry_after > self.c.retry_after_max:
                        raise InputError(f"{self.label}: asked to wait {e.retry_after:.0f}s (Retry-After), more "
                                         f"than harvest.retry_after_max={self.c.retry_after_max:.0f}s") from None
                    delay = e.retry_after
                else:  # exponential backoff with full jitter (spreads retries of parallel clients)
                    delay = self._rng.uniform(0, min(self.c.backoff_max, self.c.backoff * 2 ** attempt))
                logger.warning("%s: %s: %s; retry %d/%d in %.2fs", self.label, what, e, attempt + 1,
                               self.c.retries, delay)
                attempt += 1
                self.retries += 1
                self.waited_s += delay
                self.sleep(delay)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def work_dir(out: Path) -> Path:
    """Where pages and the checkpoint of a harvest into ``out`` live until the artifact is written."""
    return out.parent / f".{out.name}.harvest"


def _write_page(path: Path, rows: list[str]) -> None:
    # Level 1: work files are read once, when the artifact is written (which compresses properly).
    with atomic_open(path, "wb") as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=1, mtime=0) as gz:
        if rows:
            gz.write((" .\n".join(rows) + " .\n").encode("utf-8"))


def harvest(endpoint: str | HttpEndpoint | StoreEndpoint, query: str | Path | Query, out: str | Path,
            config: HarvestConfig | None = None, *, pipeline_key: str | None = None,
            inputs: list[Path] | None = None, extra: dict | None = None, manifest_config: dict | None = None,
            allow_empty: bool = False, _sleep: Callable[[float], None] = time.sleep,
            _stop_after_pages: int | None = None):
    """Harvest ``query`` from ``endpoint`` into the graph artifact ``out``; returns its Manifest.

    ``endpoint`` is a URL or an endpoint object (:class:`StoreEndpoint` for an embedded store);
    ``query`` a ``.rq`` Path, query text, or a parsed :class:`Query`. ``_stop_after_pages`` (tests)
    stops after that many pages as a crash would, leaving the checkpoint for ``resume``.
    ``manifest_config`` is the stage config to record (default: the endpoint and ``config``).
    Zero triples raise :class:`EmptyResultError` unless ``allow_empty``.
    """
    config = config or HarvestConfig()
    out = Path(out)
    q = query if isinstance(query, Query) else load_query(query, validate=config.validate_query)
    ep = HttpEndpoint(endpoint, config) if isinstance(endpoint, str) else endpoint
    label = ep.describe()

    wd = work_dir(out)
    # What must match for a checkpoint to be continued: same endpoint, query and dataset.
    ident = {"endpoint": label, "query_sha256": q.sha256, "default_graph": config.default_graph,
             "max_rows": config.max_rows}
    count_text = q.count_query(template_triples(q)) if config.count_check else None
    if config.order == "natural" and count_text is None:
        raise UsageError(f"{q.name}: harvest.order=natural needs the COUNT check (enabled, and a template "
                         "without blank nodes) to prove that the pages fit together; use order=ordered")
    state = None
    if (wd / CHECKPOINT).exists():
        old = json.loads((wd / CHECKPOINT).read_text("utf-8"))
        if config.resume:
            if old.get("version") != CHECKPOINT_VERSION:
                raise UsageError(f"{wd / CHECKPOINT}: the checkpoint was written by another kgllm version "
                                 f"(checkpoint format {old.get('version')}, this version reads "
                                 f"{CHECKPOINT_VERSION}) and cannot be continued; rerun without --resume to "
                                 "start over (it discards the checkpoint)")
            if old.get("ident") != ident:
                raise UsageError(f"{wd / CHECKPOINT}: the checkpoint is for another endpoint or query "
                                 f"({old.get('ident')}); rerun without --resume to start over")
            state = old
            logger.info("resuming %s at page %d (offset %d)", q.name, len(state["pages"]), state["offset"])
        else:
            logger.warning("%s: discarding the checkpoint of an earlier, unfinished harvest "
                           "(use --resume to continue it)", wd)
    if state is None:
        mode = config.order if config.order != "auto" else ("natural" if count_text else "ordered")
        state = _fresh_state(wd, ident, mode)

    pacer = _Pacer(config, label, _sleep)
    # The pacer counts on from the checkpoint's totals (counts survive resumes and the restart below).
    pacer.requests, pacer.retries = state["requests"], state["retries"]
    t0 = time.perf_counter()
    while True:
        ordered = state["mode"] == "ordered" and ep.paging
        _fetch_pages(q, ep, label, ordered, config, state, wd, pacer, _stop_after_pages)
        # COUNT check: how many distinct triples the endpoint says the query yields.
        expected = None
        if not config.count_check:
            count_note = "disabled"
        elif count_text is None:
            count_note = "not possible: the template has blank nodes or could not be analysed"
        else:
            expected = pacer.call(lambda: ep.count(count_text), "COUNT check")
            count_note = f"ok: {expected} distinct triples"
        state.update(requests=pacer.requests, retries=pacer.retries)
        try:
            return _assemble(q, label, config, state, wd, out, expected, count_note, count_text,
                             round(time.perf_counter() - t0, 3), pipeline_key, inputs, extra, manifest_config,
                             ordered=ordered, allow_empty=allow_empty)
        except _CountMismatch as e:
            if config.order != "auto" or state["mode"] != "natural":
                raise
            logger.warning("%s; harvesting again with ordered pages (harvest.order=ordered)", e)
            state = _fresh_state(wd, ident, "ordered", carry=state)


def _fresh_state(wd: Path, ident: dict, mode: str, carry: dict | None = None) -> dict:
    shutil.rmtree(wd, ignore_errors=True)
    (wd / "pages").mkdir(parents=True)
    keep = {k: carry[k] for k in ("requests", "retries", "truncated", "started")} if carry else {}
    return {"version": CHECKPOINT_VERSION, "ident": ident, "mode": mode, "offset": 0, "limit": None, "cap": None,
            "pages": [], "done": False, "requests": 0, "retries": 0, "truncated": 0, "skipped": 0,
            "started": _now(), **keep}


def _fetch_pages(q: Query, ep, label: str, ordered: bool, config: HarvestConfig, state: dict, wd: Path,
                 pacer: _Pacer, stop_after: int | None) -> None:
    """Fetch pages until the last one, writing each page and the checkpoint atomically.

    ``ordered``: ORDER BY pages (the state's mode on an endpoint that pages)."""
    cap = state["cap"] or ep.cap or (config.max_rows or None)
    limit = state["limit"] or (min(config.page_size, cap - 1) if cap else config.page_size)
    if not ep.paging:
        cap, limit = None, 2**31 - 1
    bar = progress(desc=f"harvest {Path(q.name).name}", unit="triples")
    bar.update(sum(p["rows"] for p in state["pages"]))
    fetched_now = 0

    def save() -> None:
        state.update(limit=limit, cap=cap, requests=pacer.requests, retries=pacer.retries)
        atomic_write_json(wd / CHECKPOINT, state)

    try:
        while not state["done"]:
            offset = state["offset"]
            page_no = len(state["pages"])
            text = q.paged(limit, offset, ordered=ordered)
            resp = pacer.call(lambda t=text: ep.request(t, q.form), f"page {page_no} (offset {offset})")
            announced = resp.headers.get("x-sparql-maxrows")
            if announced and announced.isdigit() and (cap is None or int(announced) < cap):
                cap = int(announced)
                logger.info("%s announces a row cap of %d (X-SPARQL-MaxRows)", label, cap)
            if cap is not None and (resp.results >= cap or limit >= cap) and q.variables:
                # Truncated (or possibly): the cap cut the page. Shrink and fetch the same offset again.
                new = max(1, min(limit // 2, cap - 1)) if resp.results >= cap else cap - 1
                if new == limit:
                    raise InputError(f"{label}: a page of {limit} solution(s) still hits the row cap {cap}; "
                                     "the CONSTRUCT template yields too many triples per solution")
                logger.info("page %d: %d results at a cap of %d: truncated, page size %d -> %d",
                            page_no, resp.results, cap, limit, new)
                state["truncated"] += 1
                limit = new
                save()
                continue
            rows = sorted(resp.rows)  # sorted: pages are byte-identical across runs
            fname = f"pages/{page_no:05d}.nt.gz"
            _write_page(wd / fname, rows)
            state["skipped"] += resp.skipped
            state["pages"].append({"file": fname, "page": page_no, "offset": offset, "limit": limit,
                                   "rows": len(rows), "results": resp.results, "retrieved_at": _now()})
            state["offset"] = offset + limit
            # Last page: a SELECT page short of its limit; for CONSTRUCT (several or no triples per
            # solution) only an empty page is conclusive. A constant template is a single request.
            state["done"] = (not q.variables or resp.results == 0 or not ep.paging
                             or (q.form == "SELECT" and resp.results < limit))
            save()
            bar.update(len(rows))
            bar.set_postfix(page=page_no, refresh=False)
            fetched_now += 1
            if stop_after is not None and fetched_now >= stop_after and not state["done"]:
                raise _Interrupted(f"stopped after {fetched_now} page(s) as asked")
    except BaseException:
        if state["pages"]:
            logger.warning("harvest of %s stopped after %d page(s); the checkpoint is kept in %s: rerun with "
                           "--resume (harvest.resume=true) to continue", q.name, len(state["pages"]), wd)
        raise
    finally:
        bar.close()


class _CountMismatch(InputError):
    """The endpoint's COUNT differs from the number of distinct triples harvested."""


def _assemble(q: Query, label: str, config: HarvestConfig, state: dict, wd: Path, out: Path,
              expected: int | None, count_note: str, count_text: str | None, harvest_s: float,
              pipeline_key, inputs, extra, manifest_config, *, ordered: bool, allow_empty: bool = False):
    """Write the graph artifact from the pages (one shard each) and check the COUNT; remove the work dir."""
    queries = [{"name": q.name, "sha256": q.sha256, "text": q.text, "form": q.form,
                "paged_text": q.paged(state["limit"] or 0, 0, ordered=ordered), "count_text": count_text}]
    with GraphWriter(out, config=manifest_config or {"endpoint": label, **asdict(config)}, inputs=inputs,
                     pipeline_key=pipeline_key) as g:
        distinct = 0
        for p in state["pages"]:
            prov = {"source": "sparql", "endpoint": label, "query": q.name, "query_sha256": q.sha256,
                    "page": p["page"], "offset": p["offset"], "limit": p["limit"], "retrieved_at": p["retrieved_at"]}
            with gzip.open(wd / p["file"], "rt", encoding="utf-8") as f, g.shard(prov) as add:
                for line in f:
                    s, pr, o = line[:-3].split(" ", 2)
                    distinct += add(s, pr, o)
        if expected is not None and expected != distinct:
            raise _CountMismatch(
                f"{label}: COUNT check failed for {q.name}: the endpoint counts {expected} distinct triples, "
                f"the harvest ({state['mode']} pages) has {distinct}; the data may have changed during the harvest, "
                f"or the endpoint caps results below harvest.max_rows={config.max_rows} without saying so. "
                "Rerun without --resume (with a smaller harvest.max_rows).")
        if not distinct:
            params = ", ".join(f"{k}={v}" for k, v in ((extra or {}).get("params") or {}).items())
            what = f"{label}: the query {q.name}{f' ({params})' if params else ''} returned 0 triples"
            if not allow_empty:
                shutil.rmtree(wd, ignore_errors=True)  # a complete harvest of nothing: nothing to resume
                raise EmptyResultError(f"{what}; pass --allow-empty to accept an empty graph")
            logger.warning("%s (accepted: allow_empty)", what)
        g.counts.update(pages=len(state["pages"]), results=sum(p["results"] for p in state["pages"]),
                        skipped_rows=state["skipped"], requests=state["requests"], retries=state["retries"],
                        truncated_pages=state["truncated"], expected_triples=expected)
        g.extra.update(source="sparql", endpoint=label, queries=queries, row_cap=state["cap"],
                       page_size=state["limit"], order=state["mode"], count_check=count_note,
                       started=state["started"], harvest_s=harvest_s, **(extra or {}))
    shutil.rmtree(wd, ignore_errors=True)
    return g.manifest


class _Interrupted(RuntimeError):
    """Raised by ``_stop_after_pages`` to simulate a crash in tests."""
