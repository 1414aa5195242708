"""Prometheus metrics of one gateway process (``prometheus_client``), served at
``/metrics`` (``assistant/api/routers/metrics.py``).

- HTTP requests and their latency (time to the first byte of the answer) per route
  *template* (``/api/v1/desk/tickets/{ticket_id}``, never the raw path) — recorded by
  ``assistant.api.observability.RequestMetrics``;
- conversation turns by intent and channel, replies by kind, handoffs by reason
  (:func:`record_turn`, :func:`record_handoff`);
- the speech recogniser's real-time factor (:func:`record_asr`);
- queue lengths (WeChat customer-service messages to send, the kiosk outbox, status
  notices pending, open handoff tickets), counted in the database when scraped and
  kept :data:`QUEUE_CACHE_SECONDS` so that frequent scrapes stay cheap.

Each gateway replica is its own process with its own counters: Prometheus scrapes
every replica (its own port, not through nginx) and sums in queries. The queue
lengths are the same database seen from every replica (use ``max``, not ``sum``).

No personal data in labels: labels are route templates, intents, channels, answer
kinds and reasons, each bounded (:class:`BoundedLabel`: at most
:data:`MAX_LABEL_VALUES` distinct values per label, then ``other``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from functools import lru_cache
from typing import Dict, Iterable, Optional, Tuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import func, select

from assistant.storage import tables
from assistant.storage.database import session_factory

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4"  # Starlette adds "; charset=utf-8"
MAX_LABEL_VALUES = 64
OTHER = "other"
NONE = "none"
QUEUE_CACHE_SECONDS = 5.0
# Latency buckets (seconds): API answers take milliseconds, a chat turn tens to
# hundreds of ms, a voice turn or a slow action server seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Real-time factor: decoding time / audio duration (< 1: faster than real time).
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "banshi_http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "banshi_http_request_duration_seconds",
    "Time from the request to the first byte of the answer, by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TURNS = Counter(
    "banshi_turns_total",
    "Conversation turns answered by the assistant, by intent and channel",
    ["intent", "channel"],
    registry=REGISTRY,
)
ANSWERS = Counter(
    "banshi_answers_total",
    "Replies of the assistant by kind (materials, fee, not_covered, handoff, ...) and channel",
    ["kind", "channel"],
    registry=REGISTRY,
)
HANDOFFS = Counter(
    "banshi_handoffs_total",
    "Handoff tickets opened, by reason (request_human, complaint, fallback) and channel",
    ["reason", "channel"],
    registry=REGISTRY,
)
ASR_RTF = Histogram(
    "banshi_asr_real_time_factor",
    "Speech recognition time divided by the audio's duration, by mode (utterance: a whole "
    "recording; stream: live audio, decoding time while it was fed)",
    ["mode"],
    buckets=RTF_BUCKETS,
    registry=REGISTRY,
)

MODEL_LOADS = Counter(
    "banshi_model_loads_total",
    "Retrained models this gateway took up after a training run, by outcome (loaded, failed, kept)",
    ["outcome"],
    registry=REGISTRY,
)
CATALOG_SWAPS = Counter(
    "banshi_catalog_swaps_total",
    "Published catalog versions this gateway swapped in (no retraining)",
    registry=REGISTRY,
)

_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:/{}-]{1,80}$")


class BoundedLabel:
    """Label values seen so far, at most ``limit`` distinct ones: a value that does not
    look like an identifier, or any new value past the limit, becomes ``other`` (a
    model that invents intent names cannot grow the series without end)."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set = set()
        self._lock = threading.Lock()

    def __call__(self, value: Optional[str]) -> str:
        if value is None or value == "":
            return NONE
        if not _LABEL_RE.match(value):
            return OTHER
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


INTENT_LABEL = BoundedLabel()
CHANNEL_LABEL = BoundedLabel(16)
KIND_LABEL = BoundedLabel(32)
REASON_LABEL = BoundedLabel(16)
ROUTE_LABEL = BoundedLabel(256)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    route = ROUTE_LABEL(route)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def record_turn(intent: Optional[str], channel: str, answer: Optional[str]) -> None:
    """One turn the assistant answered (not one relayed to a person)."""
    channel = CHANNEL_LABEL(channel)
    TURNS.labels(INTENT_LABEL(intent), channel).inc()
    ANSWERS.labels(KIND_LABEL(answer), channel).inc()


def record_handoff(reason: Optional[str], channel: str) -> None:
    HANDOFFS.labels(REASON_LABEL(reason), CHANNEL_LABEL(channel)).inc()


def record_model_load(outcome: str) -> None:
    MODEL_LOADS.labels(outcome).inc()


def record_catalog_swap() -> None:
    CATALOG_SWAPS.inc()


ASR_UTTERANCE = "utterance"
ASR_STREAM = "stream"


def record_asr(mode: str, busy_seconds: float, audio_seconds: float) -> None:
    """Real-time factor of one recognised utterance (nothing for empty audio)."""
    if audio_seconds > 0:
        ASR_RTF.labels(mode).observe(busy_seconds / audio_seconds)


# ------------------------------------------------------------------ queues
QUEUE_WECHAT = "wechat_outgoing"  # customer-service messages not yet sent nor given up
QUEUE_OUTBOX = "kiosk_outbox"  # kiosk messages not yet delivered to the central server
QUEUE_NOTICES = "progress_notices"  # status notices pending
QUEUE_TICKETS = "open_tickets"  # handoff tickets waiting or with an operator
QUEUE_WAITING = "waiting_tickets"  # of those, waiting for an operator


def _queue_queries() -> Tuple[Tuple[str, object], ...]:
    W, O, N, T = tables.WeChatOutgoing, tables.OutboxMessage, tables.ProgressNotice, tables.HandoffTicket
    count = func.count()
    return (
        (QUEUE_WECHAT, select(count).select_from(W).where(W.sent_at.is_(None), W.failed_at.is_(None))),
        (QUEUE_OUTBOX, select(count).select_from(O).where(O.delivered_at.is_(None), O.failed_at.is_(None))),
        (QUEUE_NOTICES, select(count).select_from(N).where(N.state == "pending")),
        (QUEUE_TICKETS, select(count).select_from(T).where(T.status.in_(tables.OPEN_TICKET_STATUSES))),
        (QUEUE_WAITING, select(count).select_from(T).where(T.status == tables.TICKET_WAITING)),
    )


def count_queues(db_url: str) -> Dict[str, int]:
    """The length of every queue, counted now (one short read transaction)."""
    with session_factory(db_url)() as db:
        return {name: int(db.execute(query).scalar_one()) for name, query in _queue_queries()}


class QueueCollector:
    """Queue lengths as gauges, counted at scrape time and cached a few seconds; when
    the database cannot be read, ``banshi_queue_scrape_ok`` is 0 and the lengths are
    left out (an absent series, not a wrong zero)."""

    def __init__(self, db_url: str, cache_seconds: float = QUEUE_CACHE_SECONDS) -> None:
        self.db_url = db_url
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: Optional[Tuple[float, Optional[Dict[str, int]]]] = None

    def lengths(self) -> Optional[Dict[str, int]]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            try:
                counted: Optional[Dict[str, int]] = count_queues(self.db_url)
            except Exception as exc:  # database down: say so in the scrape, do not fail it
                logger.warning("metrics.queues.unavailable error=%s", type(exc).__name__)
                counted = None
            self._cached = (now, counted)
            return counted

    def describe(self) -> Iterable:
        return []

    def collect(self) -> Iterable:
        counted = self.lengths()
        ok = GaugeMetricFamily("banshi_queue_scrape_ok", "1 when the queue lengths could be read from the database")
        ok.add_metric([], 1.0 if counted is not None else 0.0)
        yield ok
        if counted is None:
            return
        gauge = GaugeMetricFamily(
            "banshi_queue_length", "Items waiting in a queue (shared database: the same on every replica)", labels=["queue"]
        )
        for name, value in counted.items():
            gauge.add_metric([name], float(value))
        yield gauge


@lru_cache(maxsize=8)
def _queue_registry(db_url: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(db_url))
    return registry


def exposition(db_url: str) -> bytes:
    """Everything in Prometheus' text format (blocking: the queue counts read the
    database; call it in a worker thread)."""
    return generate_latest(REGISTRY) + generate_latest(_queue_registry(db_url))
