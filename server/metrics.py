"""Prometheus metrics. Hot paths bump plain integers in `STATS`; a collector turns
them into metric families when /metrics is scraped, so counting costs nothing
measurable per frame."""

import asyncio
import os
import socket
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from .edge import LEAN
from .edge import LIMITS as EDGE
from .store import StoreUnavailable


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
        self.socket_failures = 0  # sockets closed with 1011 by the read loop's last-resort guard


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
        yield CounterMetricFamily(
            "leitai_socket_failures",
            "Sockets closed with 1011 after an unforeseen error in their handler",
            value=STATS.socket_failures,
        )
        yield from self._paths_store_edge()

    def _paths_store_edge(self):
        fast = self.fast_path
        if fast is not None:
            yield GaugeMetricFamily(
                "leitai_fast_path", "1 while every socket takes the fast write path", value=1 if fast.in_use else 0
            )
            paths = CounterMetricFamily("leitai_socket_paths", "Sockets by write path", labels=["path"])
            for path, n in fast.paths.items():
                paths.add_metric([path], n)
            yield paths
        yield from self.scale()
        yield GaugeMetricFamily(
            "leitai_shows_loaded", "Shows with a replica in this process", value=len(self.node.shows)
        )
        yield GaugeMetricFamily(
            "leitai_store_shows_in_memory",
            "Shows whose records the store holds in this process's memory (embedded mode)",
            value=self.node.store.shows_in_memory(),
        )
        # the edge (server/edge.py): connections closed before any request was read
        closed = CounterMetricFamily("leitai_connections_closed", "Connections closed by the edge", labels=["reason"])
        closed.add_metric(["over_cap_per_ip"], EDGE.refused)
        closed.add_metric(["header_timeout"], EDGE.timed_out)
        yield closed
        yield GaugeMetricFamily(
            "leitai_lean_sockets",
            "1 if sockets get the lean incoming queue and writable event (server/edge.py), 0 if uvicorn's own",
            value=1 if LEAN.on else 0,
        )

    def scale(self):
        """The store's link and what scale-out saves: resumed sockets, events received."""
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


SHARE_S = 2.0  # workers leave their figures in the store this often (WORKERS > 1)


def merge(texts: list[bytes]) -> bytes:
    """Several processes' /metrics texts as one: every sample summed by name and labels
    (counters, gauges such as sockets, histogram buckets); `_created` stamps dropped."""
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            entry = families.setdefault(family.name, (family.type, family.documentation, {}))
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                entry[2][key] = entry[2].get(key, 0.0) + sample.value
    lines = []
    for name, (kind, doc, samples) in families.items():
        if not samples:
            continue
        lines += [f"# HELP {name} {doc.replace(chr(92), chr(92) * 2)}", f"# TYPE {name} {kind}"]
        for (sample_name, labels), value in samples.items():
            quoted = ",".join(f'{k}="{escape(v)}"' for k, v in labels)
            labelled = f"{sample_name}{{{quoted}}}" if labels else sample_name
            lines.append(f"{labelled} {floatToGoString(value)}")
    return ("\n".join(lines) + "\n").encode()


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self, node, fast_path=None, workers: int = 1) -> None:
        self.node = node
        self.workers = workers
        # the workers of one server share a parent: their figures are added up
        self.group = f"{socket.gethostname()}:{os.getppid()}"
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

    async def render_all(self) -> bytes:
        """This process's figures; with WORKERS > 1, the sum over every live worker of
        this server (each leaves its own in the store every SHARE_S)."""
        own = self.render()
        share = getattr(self.node.store, "share_metrics", None)
        if self.workers <= 1 or share is None:
            return own
        try:
            others = await share(self.group, own, SHARE_S * 3)
        except StoreUnavailable:
            return own + b"# the other workers' figures are missing: the store is unavailable\n"
        count = b"# HELP leitai_metrics_processes Worker processes whose figures are summed here\n"
        count += b"# TYPE leitai_metrics_processes gauge\nleitai_metrics_processes %d\n" % (len(others) + 1)
        return merge([own, *others]) + count  # guard: metrics across workers

    def start_sharing(self, tasks: Any) -> None:
        if self.workers > 1:
            tasks.spawn(self.share_forever(), "metrics-share")

    async def share_forever(self) -> None:
        share = getattr(self.node.store, "share_metrics", None)
        if share is None:
            return
        while True:
            try:
                await share(self.group, self.render(), SHARE_S * 3)
            except StoreUnavailable:
                pass
            await asyncio.sleep(SHARE_S)
