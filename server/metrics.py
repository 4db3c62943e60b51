"""Prometheus metrics. Hot paths bump plain integers in `STATS`; a collector turns
them into metric families when /metrics is scraped, so counting costs nothing
measurable per frame."""

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class Stats:
    """Counters kept as plain ints by the code that counts them."""

    def __init__(self) -> None:
        self.frames_in: Tally[str] = Tally()  # by role
        self.frames_out = 0  # frames written to sockets (each recipient counts)
        self.likes = 0  # taps received
        self.errors: Tally[str] = Tally()  # error replies by code
        self.dropped = 0  # clients dropped for lagging
        self.resumed = 0  # sockets that resumed from their last seq (no snapshot)
        self.likes_dropped = 0  # likes lost because the store stayed unreachable too long


STATS = Stats()


class _Collector:
    def __init__(self, node, fast_path) -> None:
        self.node = node
        self.fast_path = fast_path

    def collect(self):
        sockets = GaugeMetricFamily("leitai_sockets", "Connected sockets in this process", labels=["role"])
        totals: Tally[str] = Tally()
        for rt in self.node.shows.values():
            for role, conns in rt.room.conns.items():
                totals[role] += len(conns)
        for role in ("audience", "overlay", "console"):
            sockets.add_metric([role], totals[role])
        yield sockets
        frames_in = CounterMetricFamily("leitai_frames_in", "Client frames received", labels=["role"])
        for role, n in STATS.frames_in.items():
            frames_in.add_metric([role], n)
        yield frames_in
        yield CounterMetricFamily("leitai_frames_out", "Frames written to sockets", value=STATS.frames_out)
        yield CounterMetricFamily("leitai_likes", "Likes (taps) received", value=STATS.likes)
        errors = CounterMetricFamily("leitai_errors", "Error replies sent", labels=["code"])
        for code, n in STATS.errors.items():
            errors.add_metric([code], n)
        yield errors
        yield CounterMetricFamily("leitai_clients_dropped", "Clients dropped for falling behind", value=STATS.dropped)
        yield CounterMetricFamily(
            "leitai_likes_dropped",
            "Likes lost: the store stayed unreachable past OUTAGE_LIKES_MAX",
            value=STATS.likes_dropped,
        )
        fast = self.fast_path
        if fast is not None:
            yield GaugeMetricFamily(
                "leitai_fast_path", "1 while every socket takes the fast write path", value=1 if fast.in_use else 0
            )
            paths = CounterMetricFamily("leitai_socket_paths", "Sockets by write path", labels=["path"])
            for path, n in fast.paths.items():
                paths.add_metric([path], n)
            yield paths
        yield CounterMetricFamily(
            "leitai_redis_reconnects",
            "Times the Redis subscription was re-established",
            value=getattr(self.node.store, "reconnects", 0),
        )
        yield CounterMetricFamily(
            "leitai_resumed", "Sockets that resumed from their last seq instead of a snapshot", value=STATS.resumed
        )
        yield CounterMetricFamily(
            "leitai_store_messages",
            "Show events and signals this process received from the store (only shows it has sockets for)",
            value=getattr(self.node.store, "received", 0),
        )
        yield GaugeMetricFamily(
            "leitai_shows_loaded", "Shows with a replica in this process", value=len(self.node.shows)
        )


class Metrics:
    def __init__(self, node, fast_path=None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(node, fast_path))
        self.tick_seconds = Histogram(
            "leitai_tick_seconds",
            "Duration of one tick (flush likes, send tallies)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
