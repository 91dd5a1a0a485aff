"""``/metrics``: Prometheus text format, one ``CollectorRegistry`` per application.

    govgate_proxy_requests_total{system,status,decision}   counter
    govgate_proxy_request_seconds{system}                  histogram (whole request)
    govgate_proxy_upstream_seconds{system}                 histogram (upstream part)
    govgate_proxy_upstream_errors_total{system,kind}       counter (timeout, connect, ...)
    govgate_forward_auth_total{decision}                   counter
    govgate_policy_decision_seconds                        histogram
    govgate_policy_version / govgate_policy_lines          gauges (lowest / highest of the
                                                           live workers)
    govgate_audit_queue_depth                              gauge (records awaiting commit,
                                                           summed over the live workers)
    govgate_audit_journal_lag_records                      gauge (records in the journal, not yet
                                                           in the tables, summed over the live
                                                           workers)
    govgate_audit_journal_lag_seconds                      gauge (age of the oldest of them; the
                                                           largest of the live workers')
    govgate_audit_ship_lag_records{target}                 gauge (committed, not shipped)
    govgate_audit_ship_lag_seconds{target}                 gauge (age of the oldest of them)

Under ``govgate serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set by serve before
the workers start, so prometheus-client chose its file-backed values when they
imported it) every worker writes its values to files there and a scrape, whichever
worker answers it, reads them all (``MultiProcessCollector``): counters and
histograms are summed over every worker that ever ran, gauges follow their
``multiprocess_mode``, over the workers alive. A gauge computed on scrape
(``set_function``) never reaches the files, so in that mode each worker sets its
gauges itself once a second (``GAUGE_SECONDS``) and at each scrape it answers. The
shipping lag is read from the database by whichever worker answers the scrape.

In one process the three histograms (two per proxied request, one per decision) are
:class:`QueuedHistogram`: an observation is queued (an append) and the buckets take
the queue at the next scrape, or once :data:`QUEUED_MAX` are waiting, instead of
two locked increments and a bucket search per observation on the request path. What
a scrape shows is the same: every observation made before it.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from starlette.requests import Request
from starlette.responses import Response

from audit import AuditLog
from gateway.audit_shipping import TargetLag
from policies import Policies

log = logging.getLogger("govgate")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                   5, 10, 30)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
GAUGE_SECONDS = 1.0  # how stale another worker's gauges may be in a scrape
LAGS_SECONDS = 0.05  # the journal lag's two gauges of one scrape: one query


QUEUED_MAX = 4096  # observations waiting for a scrape before the observer folds them


class QueuedHistogram(Histogram):
    """A Histogram whose ``observe`` queues the amount (module docstring): the queue
    is folded into the buckets and sum when the histogram is collected, and by the
    observer itself once it holds :data:`QUEUED_MAX`. ``deque`` appends and pops are
    atomic, so an observation from any thread is counted exactly once."""

    _queued: collections.deque[float] | None = None  # a labelled parent has none

    def _metric_init(self) -> None:
        super()._metric_init()
        self._queued = collections.deque()

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        queued = self._queued
        if queued is None or exemplar:
            super().observe(amount, exemplar)  # a parent's refusal; an exemplar's own path
            return
        queued.append(amount)
        if len(queued) >= QUEUED_MAX:
            self.fold()

    def fold(self) -> None:
        """Move the queued observations into the buckets and the sum."""
        queued = self._queued
        if not queued:
            return
        bounds = self._upper_bounds
        counts = [0] * len(bounds)
        total = 0.0
        take = queued.popleft
        for _ in range(len(queued)):  # what is there now; later ones wait for next time
            try:
                amount = take()
            except IndexError:  # another thread's fold (a scrape's, a request's) took it
                break
            total += amount
            if amount == amount:  # as Histogram.observe: a NaN goes to the sum only
                counts[bisect.bisect_left(bounds, amount)] += 1  # the first bound >= it
        self._sum.inc(total)
        for bucket, n in zip(self._buckets, counts, strict=True):
            if n:
                bucket.inc(n)

    def _child_samples(self) -> Iterable[Sample]:
        self.fold()
        return super()._child_samples()


def multiprocess_dir() -> str | None:
    """The directory the workers share their values through, or None (one process)."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    def __init__(self, *, policies: Policies | None = None, audit: AuditLog | None = None,
                 shipping: Callable[[], Sequence[TargetLag]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.shared = multiprocess_dir()
        r = self.registry
        # in multiprocess mode every observation goes to this worker's file at once: a
        # scrape answered by another worker reads the files only
        histogram: Any = Histogram if self.shared is not None else QueuedHistogram
        self.requests = Counter("govgate_proxy_requests", "Proxied requests",
                                ["system", "status", "decision"], registry=r)
        self.latency = histogram("govgate_proxy_request_seconds", "Whole request latency",
                                 ["system"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_latency = histogram("govgate_proxy_upstream_seconds",
                                          "Upstream response time", ["system"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("govgate_proxy_upstream_errors", "Upstream failures",
                                       ["system", "kind"], registry=r)
        self.forward_auth = Counter("govgate_forward_auth", "Forward-auth answers",
                                    ["decision"], registry=r)
        self.decision_seconds = histogram(
            "govgate_policy_decision_seconds", "Policy decision time",
            buckets=(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 5e-4, 1e-3), registry=r)
        # a worker still on an older policy shows as the lowest version
        self.policy_version = Gauge("govgate_policy_version", "Loaded policy version",
                                    registry=r, multiprocess_mode="livemin")
        self.policy_lines = Gauge("govgate_policy_lines", "Loaded policy lines", registry=r,
                                  multiprocess_mode="livemax")
        self.queue = Gauge("govgate_audit_queue_depth", "Audit records awaiting commit",
                           registry=r, multiprocess_mode="livesum")
        self.journal_lag = Gauge("govgate_audit_journal_lag_records",
                                 "Audit records durable in the journal, not yet in the tables",
                                 registry=r, multiprocess_mode="livesum")
        self.journal_lag_seconds = Gauge(
            "govgate_audit_journal_lag_seconds",
            "Age of the oldest audit record durable in the journal, not yet in the tables",
            registry=r, multiprocess_mode="livemax")
        self._policies = policies
        self._audit = audit
        self._last_lags: tuple[float, tuple[float, float]] | None = None
        self._stop = threading.Event()
        self._shipping = ShippingLag(shipping) if shipping is not None else None
        if self.shared is None:
            if policies is not None:
                self.policy_version.set_function(lambda: float(policies.version))
                self.policy_lines.set_function(lambda: float(len(policies.engine.index)))
            self.queue.set_function(self._depth)
            self.journal_lag.set_function(lambda: self._journal_lags()[0])
            self.journal_lag_seconds.set_function(lambda: self._journal_lags()[1])
            if self._shipping is not None:
                r.register(self._shipping)
        else:
            self.refresh()
            threading.Thread(target=self._refresh_forever, name="govgate-metrics",
                             daemon=True).start()

    def _depth(self) -> float:
        return float(self._audit.queue_depth) if self._audit is not None else 0.0

    def _journal_lags(self) -> tuple[float, float]:
        """The indexer's lag (records, seconds), read at most once per LAGS_SECONDS: the
        two gauges of one scrape share one query."""
        now = time.monotonic()
        if self._last_lags is not None and now - self._last_lags[0] < LAGS_SECONDS:
            return self._last_lags[1]
        lags = (0.0, 0.0)
        if self._audit is not None:
            try:
                behind, seconds = self._audit.journal_lags()
                lags = (float(behind), seconds)
            except Exception as exc:  # the database away: the journal keeps the records
                log.warning("audit journal lag unknown: %s", exc)
                lags = (float("nan"), float("nan"))
        self._last_lags = (now, lags)
        return lags

    def refresh(self) -> None:
        """Write this worker's gauges (multiprocess mode)."""
        if self._policies is not None:
            self.policy_version.set(float(self._policies.version))
            self.policy_lines.set(float(len(self._policies.engine.index)))
        self.queue.set(self._depth())
        behind, seconds = self._journal_lags()
        self.journal_lag.set(behind)
        self.journal_lag_seconds.set(seconds)

    def _refresh_forever(self) -> None:
        while not self._stop.wait(GAUGE_SECONDS):
            try:
                self.refresh()
            except Exception:  # a gauge a second late, never a dead thread
                log.exception("metrics gauges not written")

    def close(self) -> None:
        self._stop.set()

    def render(self) -> bytes:
        if self.shared is None:
            return generate_latest(self.registry)
        self.refresh()
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=self.shared)
        if self._shipping is not None:
            every_worker.register(self._shipping)
        return generate_latest(every_worker)


class ShippingLag(Collector):
    """The shipping targets' lag, read from the database at each scrape: true even
    when a shipping loop is stuck, and nothing to keep in step."""

    def __init__(self, lags: Callable[[], Sequence[TargetLag]]) -> None:
        self.lags = lags

    def collect(self) -> Iterator[GaugeMetricFamily]:
        records = GaugeMetricFamily("govgate_audit_ship_lag_records",
                                    "Audit records committed, not accepted by the target",
                                    labels=["target"])
        seconds = GaugeMetricFamily("govgate_audit_ship_lag_seconds",
                                    "Age of the oldest audit record the target has not "
                                    "accepted", labels=["target"])
        try:
            found = self.lags()
        except Exception as exc:  # the database down: the other metrics still answer
            log.warning("audit shipping lag unknown: %s", exc)
            found = ()
        now = int(time.time() * 1000)
        for one in found:
            records.add_metric([one.target], float(one.lag.records))
            seconds.add_metric([one.target], one.lag.seconds(now))
        yield records
        yield seconds

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


async def metrics_endpoint(request: Request) -> Response:
    metrics = request.app.state.gateway.metrics
    # in a thread: the shipping lag is read from the database
    return Response(await asyncio.to_thread(metrics.render), media_type=CONTENT_TYPE_LATEST)
