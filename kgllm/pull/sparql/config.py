"""The settings of a harvest: how to page, retry and pace requests.

Takes: values from the ``harvest:`` block of a ``pull.sparql`` or ``pull.dbpedia`` config (or flags).
Makes: a checked :class:`HarvestConfig`, read by the endpoints (timeouts, method, default graphs,
user agent) and by the harvester (paging, order, retries, COUNT check, resume). A module of its own so
that :mod:`.endpoint` and :mod:`.harvest` both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

USER_AGENT = "kgllm/0.1 (knowledge-graph harvester; https://w3id.org/kgllm)"


@dataclass
class HarvestConfig:
    """How to page, retry and pace requests (shared by ``pull.sparql`` and ``pull.dbpedia``)."""

    page_size: int = 10_000           # solutions per page; clamped to the endpoint's cap - 1
    max_rows: int = 10_000            # the endpoint's row cap when it does not announce one (0: none)
    timeout: float = 120.0            # seconds per request (connect + read)
    retries: int = 8                  # attempts per request after the first
    backoff: float = 1.0              # base of the exponential backoff, seconds
    backoff_max: float = 60.0         # cap of one backoff sleep
    retry_after_max: float = 600.0    # longest Retry-After we agree to wait
    rate: float = 0.0                 # at most this many requests per second (0: no limit)
    default_graph: list[str] = field(default_factory=list)  # default-graph-uri parameters
    method: Literal["auto", "GET", "POST"] = "auto"         # auto: GET unless the query is long
    count_check: bool = True          # compare with the endpoint's COUNT where the query allows
    # Page order. "ordered": ORDER BY sub-select, stable by SPARQL semantics, but the endpoint sorts
    # the whole result for every page. "natural": LIMIT/OFFSET in the endpoint's index order (no sort;
    # needs the COUNT check to prove completeness). "auto": natural where a COUNT check is possible,
    # and if it then fails, the harvest starts over ordered.
    order: Literal["auto", "ordered", "natural"] = "auto"
    validate_query: bool = True       # parse the query locally first (off for vendor extensions)
    resume: bool = False              # continue from the checkpoint of an interrupted harvest
    user_agent: str = USER_AGENT

    def __post_init__(self):
        if self.page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {self.page_size}")
        if self.max_rows < 0 or self.max_rows == 1:
            raise ValueError(f"max_rows must be 0 (no cap) or >= 2, got {self.max_rows}")
        if self.retries < 0 or self.timeout <= 0 or self.rate < 0:
            raise ValueError("retries must be >= 0, timeout > 0 and rate >= 0")

