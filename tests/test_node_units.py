"""Fast unit tests of the node's parts with fakes: a fake connection that keeps
what it is sent, the real embedded store in a temporary directory."""

import asyncio
import tempfile

import orjson
import pytest

from server.domain.ratelimit import Buckets
from server.domain.show import new_show
from server.hub import Conn
from server.node import Node
from server.protocol import Message, Reply
from server.settings import Settings
from server.store.embedded import EmbeddedStore
from server.store.replies import MemoryReplies, entry_size
from server.transport import Lagging


class FakeWriter:
    """Keeps every frame; can be told to lag."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self.frames: list[dict] = []
        self.limit = limit
        self.buffered = 0
        self.aborted = False

    def write(self, payload: bytes, wire: bytes) -> bool:
        if self.buffered > self.limit:
            raise Lagging
        self.frames.append(orjson.loads(payload))
        return True

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def abort(self) -> None:
        self.aborted = True

    async def close(self, code: int) -> None: ...


def fake_conn(role: str = "audience", dhash: str = "dev1") -> Conn:
    conn = Conn(FakeWriter(), role, "s1", "device", dhash if role == "audience" else "")
    conn.holder = dhash if role == "audience" else "host:1"
    return conn


def frames(conn: Conn) -> list[dict]:
    return conn.writer.frames  # type: ignore[attr-defined]


@pytest.fixture
async def node():
    settings = Settings.from_env(
        data_dir=tempfile.mkdtemp(prefix="leitai-node-"), question_interval_s=60, vote_min_watch_s=0
    )
    store = EmbeddedStore(settings)
    n = Node(settings, store)
    await store.start()  # no ticker: the tests tick by hand
    await store.create_show(new_show("s1", "节目", {"a": {}, "b": {}}, now=1))
    yield n
    await n.tasks.cancel()
    await store.close()


async def test_the_first_frame_is_the_snapshot_then_events_in_order(node):
    rt = await node.runtime("s1")
    console = fake_conn("console")
    await node.join(rt, console)
    await node.commands.host(rt, Message("points.set", "x", side="a", points=3))
    kinds = [f["type"] for f in frames(console)]
    assert kinds[0] == "snapshot" and kinds[1:] == ["points"]
    assert frames(console)[1]["seq"] == frames(console)[0]["seq"] + 1


async def test_a_held_socket_gets_nothing_before_its_snapshot(node):
    rt = await node.runtime("s1")
    conn = fake_conn()
    conn.held = True
    rt.room.add(conn)
    await node.commands.host(rt, Message("points.set", "x", side="a", points=1))
    assert frames(conn) == []


async def test_replies_are_typed_and_a_resent_id_is_applied_once(node):
    rt = await node.runtime("s1")
    phone = fake_conn()
    assert await node.handle(rt, phone, Message("like", None, side="a", count=2)) is None
    first = await node.handle(rt, phone, Message("like", "m1", side="a", count=3))
    again = await node.handle(rt, phone, Message("like", "m1", side="a", count=3))
    assert isinstance(first, Reply) and first.ok and again.encode() == first.encode()
    assert rt.likes.sides() == {"a": 5, "b": 0}
    bad = await node.handle(rt, phone, Message("vote", "m2", side="a"))
    assert bad.code == "conflict" and b'"code":"conflict"' in bad.encode()


async def test_budgets_belong_to_the_device_not_the_socket(node):
    rt = await node.runtime("s1")
    one, two = fake_conn(), fake_conn()
    assert (await node.handle(rt, one, Message("ask", "a1", text="第一个问题"))).ok
    limited = await node.handle(rt, two, Message("ask", "b1", text="第二个问题"))
    assert limited.code == "rate_limited" and limited.retry_ms > 0
    node.leave(rt, one)
    node.leave(rt, two)
    back = fake_conn()  # the same device on a new socket
    assert (await node.handle(rt, back, Message("ask", "c1", text="第三个问题"))).code == "rate_limited"


async def test_a_gap_in_the_events_resyncs_every_socket(node):
    rt = await node.runtime("s1")
    console = fake_conn("console")
    await node.join(rt, console)
    seq = rt.state.seq
    node.replicas.on_event("s1", seq + 2, 0, {"type": "points", "points": {"a": 9, "b": 0}})
    while rt.resyncing or len([f for f in frames(console) if f["type"] == "snapshot"]) < 2:
        await asyncio.sleep(0)
    assert [f["type"] for f in frames(console)] == ["snapshot", "snapshot"]


async def test_the_tick_sends_a_tally_only_when_it_changed(node):
    rt = await node.runtime("s1")
    overlay = fake_conn("overlay")
    await node.join(rt, overlay)
    rt.likes.add("dev1", "a", 4)
    await node.ticker.tick()
    await node.ticker.tick()
    tallies = [f for f in frames(overlay) if f["type"] == "tally"]
    assert len(tallies) == 1 and tallies[0]["likes"] == {"a": 4, "b": 0}


async def test_likes_the_store_refused_go_back_to_the_buffer(node):
    from server.store import StoreUnavailable

    rt = await node.runtime("s1")
    rt.likes.add("dev1", "b", 7)

    async def refuse(*args, **kwargs):
        raise StoreUnavailable("down")

    real = node.store.tick
    node.store.tick = refuse  # type: ignore[method-assign]
    await node.ticker.tick(final=True)
    assert rt.likes.sides() == {"a": 0, "b": 7}
    node.store.tick = real  # type: ignore[method-assign]
    await node.ticker.tick(final=True)
    assert rt.likes.sides() == {"a": 0, "b": 0} and rt.state.counters.likes["b"] == 7


async def test_the_reply_cache_keeps_to_its_byte_budget():
    cache = MemoryReplies(max_bytes=10_000, ttl_s=60)
    for i in range(1000):
        key = ("dev", f"m{i}")
        assert await cache.begin(key) is None
        await cache.finish(key, Reply.ack(f"m{i}", question=f"q{i}").encode())
    assert 0 < cache.bytes <= 10_000 and len(cache) < 1000
    assert cache.bytes == sum(entry_size(k, r) for k, (_, r) in cache._done.items())
    assert await cache.begin(("dev", "m999")) == Reply.ack("m999", question="q999").encode()


def test_buckets_are_forgotten_once_full_again():
    buckets = Buckets()
    for i in range(100):
        buckets.take(f"dev{i}", "like", 10, 20, now=0.0)
    assert len(buckets) == 100
    for i in range(60):  # later traffic sweeps out what is full again (2 s at 10/s refills 20)
        buckets.take("busy", "like", 10, 20, now=3.0 + i * 0.001)
    assert len(buckets) < 10
