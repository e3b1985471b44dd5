"""``/healthz`` and ``/metrics`` on the bridge's port, for operators and container runtimes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.driver.driver import HttpReply

if TYPE_CHECKING:
    from bridge.server.server import BridgeServer

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def health(server: BridgeServer) -> HttpReply:
    """200 while the server runs and every configured backend answers; 503 and why, if not."""
    backends = [{"vendor": b.vendor, "connected": b.connected} for b in server.driver.backends]
    problems = [b for b in backends if not b["connected"]]
    if not server.driver.connected:
        reason = "the driver is disconnected"
    elif problems:
        reason = "a backend is unreachable"
    else:
        return 200, "application/json", orjson.dumps({"status": "ok", "backends": backends})
    return 503, "application/json", orjson.dumps({"status": "unhealthy", "reason": reason,
                                                  "backends": backends})


class _BridgeCollector(Collector):
    """Reads the live counters at scrape time (nothing is counted twice or kept twice)."""

    def __init__(self, server: BridgeServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        clients = GaugeMetricFamily("eufy_bridge_clients", "Connected WebSocket clients.")
        clients.add_metric([], len(server.connections))
        yield clients
        commands = CounterMetricFamily("eufy_bridge_commands", "Commands answered, by name "
                                       "and result (success or the error code).",
                                       labels=["command", "result"])
        for (name, result), count in sorted(server.command_counts.items()):
            commands.add_metric([name, result], count)
        yield commands
        events = CounterMetricFamily("eufy_bridge_events_sent", "Events sent to clients.")
        events.add_metric([], server.events_sent)
        yield events
        drops = CounterMetricFamily("eufy_bridge_queue_drops",
                                    "Events dropped for clients that fell behind.")
        drops.add_metric([], server.dropped_events + sum(c.dropped_events
                                                         for c in server.connections))
        yield drops
        requests = CounterMetricFamily("eufy_bridge_backend_requests",
                                       "Requests to vendors.", labels=["vendor"])
        errors = CounterMetricFamily("eufy_bridge_backend_errors",
                                     "Failed requests to vendors.", labels=["vendor"])
        totals: dict[str, list[int]] = {}
        for backend in server.driver.backends:
            made, failed = backend.request_counts()
            total = totals.setdefault(backend.vendor, [0, 0])
            total[0] += made
            total[1] += failed
        for vendor, (made, failed) in sorted(totals.items()):
            requests.add_metric([vendor], made)
            errors.add_metric([vendor], failed)
        yield requests
        yield errors
        streams = GaugeMetricFamily("eufy_bridge_livestreams_active", "Live streams running.")
        streams.add_metric([], server.driver.streams.active)
        yield streams


FANOUT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """A registry of the bridge's metrics, rendered in the Prometheus text format."""

    def __init__(self, server: BridgeServer) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_BridgeCollector(server))
        self.fanout = Histogram(
            "eufy_bridge_event_fanout_seconds",
            "From a ring, motion or person reaching the bridge's clients to its last copy "
            "handed to a client's socket.", buckets=FANOUT_BUCKETS, registry=self.registry)

    def render(self) -> HttpReply:
        return 200, PROMETHEUS_TEXT, generate_latest(self.registry)
