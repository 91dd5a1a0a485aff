"""``/metrics``: Prometheus text format, one ``CollectorRegistry`` per application.

    govgate_proxy_requests_total{system,status,decision}   counter
    govgate_proxy_request_seconds{system}                  histogram (whole request)
    govgate_proxy_upstream_seconds{system}                 histogram (upstream part)
    govgate_proxy_upstream_errors_total{system,kind}       counter (timeout, connect, ...)
    govgate_forward_auth_total{decision}                   counter
    govgate_policy_decision_seconds                        histogram
    govgate_policy_version / govgate_policy_lines          gauges
    govgate_audit_queue_depth                              gauge (records awaiting commit)
    govgate_audit_ship_lag_records{target}                 gauge (committed, not shipped)
    govgate_audit_ship_lag_seconds{target}                 gauge (age of the oldest of them)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from audit import AuditLog
from gateway.audit_shipping import TargetLag
from policies import Policies

log = logging.getLogger("govgate")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                   5, 10, 30)


class Metrics:
    def __init__(self, *, policies: Policies | None = None, audit: AuditLog | None = None,
                 shipping: Callable[[], Sequence[TargetLag]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("govgate_proxy_requests", "Proxied requests",
                                ["system", "status", "decision"], registry=r)
        self.latency = Histogram("govgate_proxy_request_seconds", "Whole request latency",
                                 ["system"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_latency = Histogram("govgate_proxy_upstream_seconds",
                                          "Upstream response time", ["system"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("govgate_proxy_upstream_errors", "Upstream failures",
                                       ["system", "kind"], registry=r)
        self.forward_auth = Counter("govgate_forward_auth", "Forward-auth answers",
                                    ["decision"], registry=r)
        self.decision_seconds = Histogram(
            "govgate_policy_decision_seconds", "Policy decision time",
            buckets=(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 5e-4, 1e-3), registry=r)
        policy_version = Gauge("govgate_policy_version", "Loaded policy version", registry=r)
        policy_lines = Gauge("govgate_policy_lines", "Loaded policy lines", registry=r)
        queue = Gauge("govgate_audit_queue_depth", "Audit records awaiting commit", registry=r)

        if policies is not None:
            policy_version.set_function(lambda: float(policies.version))
            policy_lines.set_function(lambda: float(len(policies.engine.index)))

        def _depth() -> float:
            return float(audit.queue_depth) if audit is not None else 0.0

        queue.set_function(_depth)
        if shipping is not None:
            r.register(ShippingLag(shipping))

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
