"""gateway.metrics.QueuedHistogram: observations queued on the request path show in
a scrape exactly as prometheus-client's own Histogram shows them."""

from __future__ import annotations

import collections
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gateway import metrics as gateway_metrics
from gateway.metrics import LATENCY_BUCKETS, Metrics, QueuedHistogram

# on a bound, between bounds, past the last, zero, negative, NaN
AMOUNTS = [0.0005, 0.0004, 0.001, 0.003, 29.9, 30, 31, 1e9, 0.0, -1.0, float("nan")]


def _exposition(kind: type[Histogram]) -> str:
    registry = CollectorRegistry()
    labelled = kind("x_seconds", "x", ["system"], buckets=LATENCY_BUCKETS, registry=registry)
    plain = kind("y_seconds", "y", buckets=(1e-6, 5e-6, 1e-3), registry=registry)
    for n, amount in enumerate(AMOUNTS * 3):
        labelled.labels("ab"[n % 2]).observe(amount)
        plain.observe(amount)
    text = generate_latest(registry).decode()
    return "\n".join(line for line in text.splitlines() if "_created" not in line)


def test_a_scrape_shows_what_the_plain_histogram_shows() -> None:
    assert _exposition(QueuedHistogram) == _exposition(Histogram)
    assert 'x_seconds_bucket{le="0.0005",system="a"}' in _exposition(QueuedHistogram)


def test_the_queue_is_bounded_and_a_labelled_parent_still_refuses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_metrics, "QUEUED_MAX", 10)
    h = QueuedHistogram("z_seconds", "z", ["system"], registry=CollectorRegistry())
    child = h.labels("a")
    for _ in range(25):
        child.observe(0.001)
        assert child._queued is not None and len(child._queued) < 10
    with pytest.raises(ValueError):
        h.observe(0.001)  # no labels: prometheus-client's own refusal


def test_observations_from_threads_are_counted_once() -> None:
    registry = CollectorRegistry()
    h = QueuedHistogram("t_seconds", "t", registry=registry)

    def observe() -> None:
        for _ in range(2000):
            h.observe(0.002)

    def scrape() -> None:
        for _ in range(50):
            generate_latest(registry)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    threads.append(threading.Thread(target=scrape))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = generate_latest(registry).decode()
    assert "t_seconds_count 8000.0" in text and 't_seconds_bucket{le="0.005"} 8000.0' in text


def test_the_proxy_histograms_are_queued_in_one_process() -> None:
    m = Metrics()
    assert isinstance(m.latency, QueuedHistogram) and isinstance(m.decision_seconds,
                                                                 QueuedHistogram)
    m.latency.labels("s").observe(0.02)
    m.decision_seconds.observe(2e-6)
    text = m.render().decode()
    assert 'govgate_proxy_request_seconds_bucket{le="0.025",system="s"} 1.0' in text
    assert 'govgate_policy_decision_seconds_bucket{le="5e-06"} 1.0' in text
    m.close()


def test_two_folds_at_once_count_each_observation_once() -> None:
    """A scrape folds in a worker thread while a request's observation reaching
    QUEUED_MAX folds on the event loop: the first fold's queue is emptied under it."""
    h = QueuedHistogram("w_seconds", "w", registry=CollectorRegistry())

    class Interleaved(collections.deque[float]):
        other_ran = False

        def popleft(self) -> float:
            if not self.other_ran:  # the other thread's fold runs between two pops
                self.other_ran = True
                h.fold()
            return super().popleft()

    h._queued = Interleaved([0.001] * 10)
    h.fold()
    h.observe(0.001)
    count = next(s.value for s in h.collect()[0].samples if s.name == "w_seconds_count")
    assert count == 11
