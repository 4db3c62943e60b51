"""Redis store: state, counters and fan-out shared by any number of processes.

Keys of one show share the hash tag `{slug}`, so every multi-key script runs
on one Cluster slot. Events are committed by one Lua script that checks the
expected fields, writes them, takes the next `seq`, appends to the timeline
stream and publishes — atomically, so `seq` order is publish order.

A supervised listener holds the subscription: when Redis goes away it
reconnects with backoff, resubscribes and asks the node to resync (pub/sub
drops whatever was published in between).
"""

import asyncio
import logging
import random
import time
import uuid
import weakref
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ..domain import integrity, verdict
from ..domain.integrity import Ballot, VoteCounts, Voter
from ..domain.show import Counters, OrAbsent, ShowState, fields_of, is_public
from ..domain.verdict import StanceCounts
from ..settings import Settings
from . import (
    OTHER,
    PENDING,
    STANCE_BOXES,
    Box,
    Conflict,
    DeviceState,
    Replies,
    StateLost,
    Store,
    StoreRefused,
    StoreUnavailable,
)

log = logging.getLogger("leitai.redis")

COMMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local i = 5
local nexp = tonumber(ARGV[i]); i = i + 1
for _ = 1, nexp do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local exp = ARGV[i + 1]
  if exp == '' then
    if cur then return -1 end
  elseif not cur then
    if string.sub(exp, 1, 1) ~= '?' then return -1 end
  elseif string.sub(exp, 2) ~= cur then
    return -1
  end
  i = i + 2
end
local nev = tonumber(ARGV[i]); i = i + 1
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
for _ = 1, nev do
  local body = ARGV[i]
  local public = ARGV[i + 1]
  local nf = tonumber(ARGV[i + 2]); i = i + 3
  for _ = 1, nf do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2
  end
  seq = redis.call('INCR', KEYS[2])
  local pseq = 0
  if public == '1' then pseq = redis.call('INCR', KEYS[4]) end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'seq', seq, 'ts', ARGV[3], 'e', body)
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\\n' .. seq .. '\\n' .. pseq .. '\\n' .. body)
end
return seq
"""

# Ballots (domain.integrity, carried out atomically). Every ballot script gets KEYS:
# the box's ballots, its counts, its counted votes per network, the other stance
# box's ballots and the stance matrix (the last two unused outside stances), and
# ARGV[1], the box's role: "" (a round), "pre" or "post". Ballots are
# "side|status|reason|network"; counts hold "<side>" (counted), "held:<side>",
# "r:<reason>"; the matrix holds "<pre>|<post>" for devices that took both stances.
BALLOTS = """
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return -2 end
local ROLE = ARGV[1]
local function parse(raw)
  if not raw then return nil end
  local side, status, reason, net = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not side then return {side = raw, status = 'counted', reason = '', net = 'unknown'} end
  return {side = side, status = status, reason = reason, net = net}
end
local function encode(b) return b.side .. '|' .. b.status .. '|' .. b.reason .. '|' .. b.net end
local function count(device, b, sign)
  if b.status ~= 'counted' then
    redis.call('HINCRBY', KEYS[2], 'held:' .. b.side, sign)
    redis.call('HINCRBY', KEYS[2], 'r:' .. b.reason, sign)
    return
  end
  redis.call('HINCRBY', KEYS[2], b.side, sign)
  redis.call('HINCRBY', KEYS[3], b.net, sign)
  if ROLE ~= '' then
    local o = parse(redis.call('HGET', KEYS[4], device))
    if o and o.status == 'counted' then
      local pre, post = b.side, o.side
      if ROLE == 'post' then pre, post = o.side, b.side end
      redis.call('HINCRBY', KEYS[5], pre .. '|' .. post, sign)
    end
  end
end
"""

# A vote. KEYS[6]: this minute's burst counter (KEYS[#KEYS], last, is the show's fields:
# every ballot script returns -2 if the show is gone). ARGV: role, device, side, network,
# venue, young, per_network, burst_max.
VOTE = (
    BALLOTS
    + """
local device, side = ARGV[2], ARGV[3]
local prev = parse(redis.call('HGET', KEYS[1], device))
local b
if prev then
  if prev.side == side then return encode(prev) end
  b = {side = side, status = prev.status, reason = prev.reason, net = prev.net}
  count(device, prev, -1)
else
  local net = ARGV[4]
  b = {side = side, status = 'counted', reason = '', net = net}
  if ARGV[5] ~= '1' then
    local burst = 0
    if ARGV[6] == '1' then
      burst = redis.call('INCR', KEYS[6])
      redis.call('EXPIRE', KEYS[6], 180)
    end
    if burst > tonumber(ARGV[8]) then
      b.status, b.reason = 'held', 'burst'
    elseif tonumber(redis.call('HGET', KEYS[3], net) or '0') >= tonumber(ARGV[7]) then
      b.status, b.reason = 'held', 'network'
    end
  end
end
redis.call('HSET', KEYS[1], device, encode(b))
count(device, b, 1)
return encode(b)
"""
)

UNVOTE = (
    BALLOTS
    + """
local prev = parse(redis.call('HGET', KEYS[1], ARGV[2]))
if not prev then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
count(ARGV[2], prev, -1)
return 1
"""
)

RELEASE = (
    BALLOTS
    + """
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local b = parse(all[i + 1])
  if b.status == 'held' and (ARGV[2] == '' or b.reason == ARGV[2]) then
    count(all[i], b, -1)
    b.status, b.reason = 'counted', ''
    redis.call('HSET', KEYS[1], all[i], encode(b))
    count(all[i], b, 1)
    n = n + 1
  end
end
return n
"""
)

# One token from a bucket (KEYS[1]); ARGV: rate, burst. Returns the seconds to wait
# ("0" if allowed). Redis's clock, so every process agrees.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tok', 'ts')
local tok, ts = tonumber(b[1]), tonumber(b[2])
if not tok then tok, ts = burst, now end
if now > ts then tok = math.min(burst, tok + (now - ts) * rate); ts = now end
local wait = 0
if tok >= 1 then tok = tok - 1 else wait = (1 - tok) / rate end
redis.call('HSET', KEYS[1], 'tok', tostring(tok), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""

# Taps counted within each device's cap (domain.likes.split). KEYS: the likes hash,
# then one bucket per device; ARGV: rate, burst, then the taps [a, b] per device.
LIKES = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local ttl = math.ceil(burst / rate * 1000) + 1000
local total_a, total_b = 0, 0
for i = 2, #KEYS do
  local a, b = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local bk = redis.call('HMGET', KEYS[i], 'tok', 'ts')
  local tok, ts = tonumber(bk[1]), tonumber(bk[2])
  if not tok then tok, ts = burst, now end
  if now > ts then tok = math.min(burst, tok + (now - ts) * rate); ts = now end
  local allowed = math.min(a + b, math.floor(tok))
  tok = tok - allowed
  redis.call('HSET', KEYS[i], 'tok', tostring(tok), 'ts', tostring(ts))
  redis.call('PEXPIRE', KEYS[i], ttl)
  local ca, cb = a, b
  if allowed < a + b then
    if a == 0 or b == 0 then
      ca, cb = math.min(a, allowed), math.min(b, allowed)
    else
      ca = math.floor(allowed * a / (a + b) + 0.5)
      cb = allowed - ca
    end
  end
  total_a, total_b = total_a + ca, total_b + cb
end
if total_a > 0 then redis.call('HINCRBY', KEYS[1], 'a', total_a) end
if total_b > 0 then redis.call('HINCRBY', KEYS[1], 'b', total_b) end
return {total_a, total_b}
"""

UPVOTE = """
if redis.call('EXISTS', KEYS[4]) == 0 then return -2 end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
"""

PEAK = """
local p = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = tonumber(ARGV[1])
if v > p then redis.call('SET', KEYS[1], v); return v end
return p
"""

CREATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[2], 0)
return 1
"""

SAMPLE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'seq', ARGV[3], 'ts', ARGV[4], 'e', ARGV[5])
  return 1
end
return 0
"""

ERRORS = (RedisError, OSError, asyncio.TimeoutError)
T = TypeVar("T")

# Replies that mean "cannot write now", not "this command is wrong": the write was
# refused whole (a script is refused at its first write), so it is `unavailable`.
CANNOT_WRITE = (OutOfMemoryError, ReadOnlyError, TryAgainError, MasterDownError, ClusterDownError)
CANNOT_WRITE_CODES = ("OOM", "READONLY", "LOADING", "MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN")


def cannot_write(exc: ResponseError) -> bool:
    """True for an error reply that says Redis cannot take writes now (out of memory, a
    replica, loading, a failed snapshot, a busy script), whose cause is Redis's, not ours."""
    return isinstance(exc, CANNOT_WRITE) or str(exc).split(" ", 1)[0] in CANNOT_WRITE_CODES


def unavailable(exc: ResponseError) -> StoreUnavailable:
    """redis-py strips the code off the replies it has a class for: put it back."""
    code = "OOM " if isinstance(exc, OutOfMemoryError) else "READONLY " if isinstance(exc, ReadOnlyError) else ""
    return StoreUnavailable(f"Redis cannot write now: {code}{exc}")


def connect(url: str, max_connections: int = 0) -> Any:
    """(Typed Any: redis-py's asyncio annotations are unions of the sync and async
    return types, which say nothing useful here.) A client for `redis://`/`rediss://` URLs,
    `redis+sentinel://h1:26379,h2:26379/master/db` to follow the master that Sentinel
    names, or `redis+cluster://h1:6379,h2:6379` for a Redis Cluster (any of its nodes).

    With `max_connections` the pool holds at most that many connections, and a
    command waits (up to the socket timeout) for a free one rather than opening
    one more: a burst of sockets no longer opens a connection per command, each
    racing its own connect timeout (REDIS_MAX_CONNECTIONS)."""
    options: dict[str, Any] = dict(
        socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 1), health_check_interval=5
    )
    if url.startswith("redis+sentinel://"):
        from redis.asyncio.sentinel import Sentinel

        hosts, _, rest = url[len("redis+sentinel://") :].partition("/")
        master, _, db = rest.partition("/")
        sentinel = Sentinel(_hosts(hosts, 26379), socket_connect_timeout=1.0, socket_timeout=2.0)  # type: ignore[no-untyped-call]
        if max_connections:
            options["max_connections"] = max_connections
        return sentinel.master_for(master or "mymaster", db=int(db or 0), **options)
    if url.startswith("redis+cluster://"):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        hosts = url[len("redis+cluster://") :].partition("/")[0]
        nodes = [ClusterNode(h, p) for h, p in _hosts(hosts, 6379)]
        bound: dict[str, Any] = {"max_connections": max_connections} if max_connections else {}
        return RedisCluster(startup_nodes=nodes, socket_connect_timeout=1.0, socket_timeout=2.0, **bound)
    if max_connections:  # guard: redis pool bound
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=2.0, **options)
        client = aioredis.Redis(connection_pool=pool)
    else:
        client = aioredis.from_url(url, **options)
    CLIENTS.add(client)
    return client


CLIENTS: "weakref.WeakSet[Any]" = weakref.WeakSet()  # every client of this process, for shrink_pool


async def shrink_pool(client: Any) -> int:
    """Close the pool's idle connections (they are opened again on demand); how many."""
    pool = client.connection_pool
    idle = list(getattr(pool, "_available_connections", ()))
    try:
        await pool.disconnect(inuse_connections=False)
    except ERRORS:
        pass
    return len(idle)


def _hosts(hosts: str, port: int) -> list[tuple[str, int]]:
    return [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]) if ":" in h else port) for h in hosts.split(",")]


class Link:
    """One pub/sub connection and the channels it carries: every show's, or, in a
    Cluster, those of the shows whose slot one node serves (sharded pub/sub)."""

    def __init__(self, client: Any, sharded: bool) -> None:
        self.client = client
        self.sharded = sharded
        self.channels: set[bytes] = set()
        self.pubsub: Any = None
        self.waiting: dict[bytes, asyncio.Future[None]] = {}
        self.wanted = asyncio.Event()  # a sharded link has channels to subscribe to
        self.task: asyncio.Task[Any] | None = None

    async def add(self, channel: bytes) -> None:
        """Subscribe (if connected now; else the link does when it is) and wait for the
        confirmation, 2 s at most: a link that is reconnecting resyncs when it is back."""
        waiter = self.waiting.get(channel)
        if waiter is None:
            waiter = self.waiting[channel] = asyncio.get_running_loop().create_future()
        self.channels.add(channel)
        self.wanted.set()
        if self.pubsub is not None:
            try:
                await (self.pubsub.ssubscribe if self.sharded else self.pubsub.subscribe)(channel)
            except ERRORS:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 2.0)
        except TimeoutError:
            log.warning("no confirmation of the subscription to %s yet", channel.decode())

    async def remove(self, channel: bytes) -> None:
        self.channels.discard(channel)
        self.waiting.pop(channel, None)
        if self.pubsub is not None:
            try:
                await (self.pubsub.sunsubscribe if self.sharded else self.pubsub.unsubscribe)(channel)
            except ERRORS:
                pass

    def confirmed(self, channel: bytes) -> None:
        waiter = self.waiting.get(channel)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _counts(raw: dict[bytes, Any]) -> dict[str, int]:
    return {"a": int(raw.get(b"a", 0)), "b": int(raw.get(b"b", 0))}


def _vote_counts(raw: dict[bytes, Any]) -> VoteCounts:
    counts = VoteCounts.empty()
    counts.counted = _counts(raw)
    counts.held = {side: int(raw.get(b"held:" + side.encode(), 0)) for side in ("a", "b")}
    for reason in integrity.REASONS:
        counts.reasons[reason] = int(raw.get(b"r:" + reason.encode(), 0))
    return counts


def _stance_counts(pre: dict[bytes, Any], post: dict[bytes, Any], matrix: dict[bytes, Any]) -> StanceCounts:
    counts = StanceCounts()
    counts.pre = {s: int(pre.get(s.encode(), 0)) for s in verdict.STANCES}
    counts.post = {s: int(post.get(s.encode(), 0)) for s in verdict.STANCES}
    for cell, n in matrix.items():
        p, _, q = cell.decode().partition("|")
        if p in counts.matrix and q in counts.matrix[p]:
            counts.matrix[p][q] = int(n)
    return counts


class RedisReplies(Replies):
    """Replies kept in Redis for REPLY_TTL_S, so that a resend to another process is
    answered with the first reply too. An id being handled elsewhere reads as the
    empty value; a resend waits briefly for the real one."""

    def __init__(self, store: "RedisStore", slug: str) -> None:
        self.store, self.slug = store, slug

    def _key(self, key: tuple[str, str]) -> str:
        return self.store.k(self.slug, f"r:{key[0]}:{key[1]}")

    async def begin(self, key: tuple[str, str]) -> bytes | None:
        store, name = self.store, self._key(key)
        store.writable()
        ttl_ms = store.settings.reply_ttl_s * 1000
        old = await store._call(store.redis.set(name, b"", nx=True, get=True, px=ttl_ms))  # guard: dedupe (redis)
        if old is None:
            return None  # ours now
        for _ in range(60):  # another process is handling it: wait for its reply (3 s at most)
            if old:
                return bytes(old)
            await asyncio.sleep(0.05)
            old = await store._call(store.redis.get(name))
            if old is None:
                return await self.begin(key)  # it failed there and was forgotten: ours now
        return PENDING

    async def finish(self, key: tuple[str, str], reply: bytes | None) -> None:
        store, name = self.store, self._key(key)
        if reply is None:
            await store._call(store.redis.delete(name))
        else:
            await store._call(store.redis.set(name, reply, px=store.settings.reply_ttl_s * 1000))


class RedisStore(Store):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.prefix = settings.redis_prefix
        self.control = f"{self.prefix}:ctl".encode()  # keeps the main link's connection up
        self.epoch_key = f"{self.prefix}:epoch"
        self.proc = uuid.uuid4().hex[:12]
        self.cluster = settings.redis_url.startswith("redis+cluster://")
        self.redis: Any = connect(settings.redis_url, settings.redis_max_connections)
        self.links: dict[str, Link] = {}  # "" (the one link), or a Cluster node's "host:port"
        self.followed: dict[str, Link] = {}  # shows whose events this process receives
        self.received = 0  # event and signal messages decoded (tests, metrics)
        self.shrinker: asyncio.Task[Any] | None = None
        self.connected = False
        self.reconnects = 0
        self.unreplicated = 0  # acked writes answered `unavailable`: too few replicas had them
        self.write_error = ""  # the last "cannot write" reply, until a probe write works again
        self._told: set[str] = set()  # unexpected replies to the tick, logged once each
        self._closing = False
        self._scripts = {
            name: self.redis.register_script(src)
            for name, src in (
                ("commit", COMMIT.replace("'PUBLISH'", "'SPUBLISH'") if self.cluster else COMMIT),
                ("vote", VOTE),
                ("unvote", UNVOTE),
                ("release", RELEASE),
                ("take", TAKE),
                ("likes", LIKES),
                ("upvote", UPVOTE),
                ("peak", PEAK),
                ("create", CREATE),
                ("sample", SAMPLE),
            )
        }
        self._subscribed = asyncio.Event()

    selective = True

    def k(self, slug: str, name: str) -> str:
        return f"{self.prefix}:{{{slug}}}:{name}"

    def channel(self, slug: str) -> bytes:
        """The show's channel: in its slot, so a Cluster shards it with the show's keys."""
        return self.k(slug, "ev").encode()

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.redis_pool_idle_s > 0 and not self.cluster:
            self.shrinker = asyncio.create_task(self._shrink(), name="leitai-redis-shrink")
        if self.cluster:
            try:
                await self.redis.initialize()
                await self._agree_epoch()
                self.connected = True
                self._subscribed.set()
            except ERRORS as exc:
                log.error("Redis Cluster at %s is not reachable (%s)", self.settings.redis_url, exc)
        else:
            link = self.links[""] = Link(self.redis, sharded=False)
            link.task = asyncio.create_task(self._listen(link), name="leitai-redis-listener")
            try:
                await asyncio.wait_for(self._subscribed.wait(), 5)
            except TimeoutError:
                log.error(
                    "Redis at %s is not reachable; serving will resume when it is",
                    self.settings.redis_url.split("@")[-1],
                )
        await self._check_persistence()

    async def _check_persistence(self) -> None:
        """Refuse a Redis that keeps nothing on disk (no AOF, no RDB snapshots): its next
        restart would silently wipe every show. REDIS_ALLOW_NO_PERSISTENCE=1 accepts it."""
        try:
            conf: dict[Any, Any] = {}
            for name in ("appendonly", "save"):
                conf.update(await self.redis.config_get(name))
        except ERRORS as exc:  # CONFIG may be renamed or disabled on a managed Redis
            log.warning("could not read Redis's persistence settings (%s): make sure it keeps an AOF", exc)
            return
        value = {_text(k): _text(v) for k, v in conf.items()}
        if value.get("appendonly") == "yes":
            return
        if value.get("save", "").strip():
            log.warning(
                "Redis has AOF off (appendonly no): RDB snapshots alone lose the writes since the last one. "
                "See docs/deploy.md (appendonly yes, appendfsync everysec)."
            )
            return
        message = (
            'Redis keeps nothing on disk (appendonly no, save ""): a Redis restart would wipe every show. '
            "Turn on its append-only file (appendonly yes, appendfsync everysec; docs/deploy.md), "
            "or set REDIS_ALLOW_NO_PERSISTENCE=1 to accept losing everything when Redis restarts."
        )
        if not self.settings.redis_allow_no_persistence:  # guard: persistence
            log.critical(message)
            raise StoreRefused(message)
        log.warning("REDIS_ALLOW_NO_PERSISTENCE=1: %s", message)

    async def _shrink(self) -> None:
        """Every REDIS_POOL_IDLE_S, close the connections a burst opened and nobody used
        since (the pool shrinks back after a connect storm)."""
        while True:
            await asyncio.sleep(self.settings.redis_pool_idle_s)
            for client in list(CLIENTS):  # the show store's and the season store's
                await shrink_pool(client)

    async def close(self) -> None:
        self._closing = True
        if self.shrinker:
            self.shrinker.cancel()
        for link in self.links.values():
            if link.task:
                link.task.cancel()
                try:
                    await link.task
                except (asyncio.CancelledError, Exception):
                    pass
            if link.client is not self.redis:
                try:
                    await link.client.aclose()
                except ERRORS:
                    pass
        try:
            await self.redis.aclose()
        except ERRORS:
            pass

    def _link(self, channel: bytes) -> Link:
        """The link that carries a channel: the one link, or its Cluster node's."""
        if not self.cluster:
            return self.links[""]
        node = self.redis.get_node_from_key(channel)
        link = self.links.get(node.name)
        if link is None:
            client = aioredis.Redis(
                host=node.host, port=node.port, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=5
            )
            link = self.links[node.name] = Link(client, sharded=True)
            link.task = asyncio.create_task(self._listen(link), name=f"leitai-redis-listener-{node.name}")
        return link

    async def follow(self, slug: str) -> None:
        if slug in self.followed:
            return
        channel = self.channel(slug)
        link = self.followed[slug] = self._link(channel)
        await link.add(channel)

    async def unfollow(self, slug: str) -> None:
        link = self.followed.pop(slug, None)
        if link is not None:
            await link.remove(self.channel(slug))

    async def _listen(self, link: Link) -> None:
        """Subscribe the link's channels; on any failure reconnect with backoff and ask
        for a resync (pub/sub drops whatever was published in between)."""
        backoff = 0.1
        lost = False
        while not self._closing:
            if link.sharded and not link.channels:
                link.wanted.clear()
                await link.wanted.wait()
            pubsub = link.pubsub = link.client.pubsub()
            try:
                channels = list(link.channels)
                if link.sharded:
                    await pubsub.ssubscribe(*channels)
                else:
                    await pubsub.subscribe(self.control, *channels)
                    await self._agree_epoch()
                backoff = 0.1
                if lost and not self.lost:
                    log.warning("Redis is back: resubscribed, resyncing every show")
                    self.on_resync()
                lost = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message["type"]
                    if kind in ("message", "smessage"):
                        self._dispatch(message["data"])
                    elif kind in ("subscribe", "ssubscribe"):
                        if message["channel"] == self.control:
                            self.connected = True
                            self._subscribed.set()
                        link.confirmed(message["channel"])
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                if self.connected or link.sharded:
                    log.warning("Redis connection lost (%s); reconnecting", exc)
                    self.reconnects += 1
                if not link.sharded:
                    self.connected = False
                lost = True
            finally:
                link.pubsub = None
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 3.0)

    # -- the state's epoch ---------------------------------------------------------

    def _memory(self) -> Path:
        """Where this DATA_DIR remembers the epoch of the Redis state it served."""
        return self.settings.data_path() / f"redis-epoch-{self.prefix}"

    async def _agree_epoch(self) -> None:
        """The first time Redis answers: take its state's epoch (making one with SET NX if
        the state is new), unless this DATA_DIR knew another. After that, on every
        reconnect: check it is still the same."""
        current = _text(await self.redis.get(self.epoch_key) or b"")
        if self.epoch:
            self._seen_epoch(current)
            return
        memory = self._memory()
        known = memory.read_text().strip() if memory.exists() else ""
        accept = self.settings.redis_accept_new_state
        if not current and (not known or accept):
            await self.redis.set(self.epoch_key, uuid.uuid4().hex[:16], nx=True)
            current = _text(await self.redis.get(self.epoch_key) or b"")
            log.info("Redis state epoch %s (a new state)", current)
        if known and current != known and not accept:
            self.epoch = known
            self._seen_epoch(current)
            return
        self.epoch = current
        if current != known:
            tmp = memory.with_suffix(".tmp")
            tmp.write_text(current)
            tmp.replace(memory)

    async def watch(self) -> None:
        if self.epoch and not self.lost:
            self._seen_epoch(_text(await self._call(self.redis.get(self.epoch_key)) or b""))

    def _seen_epoch(self, current: str) -> None:
        if current != self.epoch:  # guard: epoch
            if not current:
                self.lose(
                    f"Redis has lost its state: its epoch (was {self.epoch}) is gone; it restarted empty or was flushed"
                )
            else:
                self.lose(f"Redis holds another state: epoch {current}, this process served {self.epoch}")

    def _dispatch(self, data: bytes) -> None:
        """`slug\\nseq\\npseq\\nbody`; seq 0 is a signal (no state change)."""
        slug, seq, pseq, body = data.split(b"\n", 3)
        self.received += 1
        try:
            frame = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if seq == b"0":
            self.on_signal(slug.decode(), frame)
        else:
            self.on_event(slug.decode(), int(seq), int(pseq), frame)

    async def share_metrics(self, group: str, text: bytes, ttl_s: float) -> list[bytes]:
        """Leave this process's /metrics text for the others of its group (the workers of
        one server) and read theirs (those that left theirs within `ttl_s`)."""
        key, now = f"{self.prefix}:metrics:{group}", int(time.time() * 1000)

        async def run() -> Any:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, self.proc, text).zadd(f"{key}:alive", {self.proc: now + int(ttl_s * 1000)})
                pipe.zremrangebyscore(f"{key}:alive", "-inf", now)
                pipe.zrange(f"{key}:alive", 0, -1).hgetall(key)
                pipe.expire(key, 3600).expire(f"{key}:alive", 3600)
                return await pipe.execute()

        *_, alive, texts, _, _ = await self._call(run())
        return [texts[proc] for proc in alive if proc != self.proc.encode() and proc in texts]

    async def ready(self) -> bool:
        return not await self.problem()

    async def problem(self) -> str:
        """Ready when the state is the one this process served, a write goes through (a
        PING answers even when Redis is out of memory, read-only or cannot save) and the
        subscription is up."""
        try:
            await self._call(self.redis.set(f"{self.prefix}:ready:{self.proc}", 1, px=10_000))  # guard: ready writes
        except StoreUnavailable as exc:
            return f"store unavailable: {exc}"
        self.write_error = ""
        if not self.connected:
            return "store unavailable: the Redis subscription is down"
        if self.lost:
            return f"store state lost: {self.lost}"
        return ""

    async def _call(self, coro: Awaitable[T]) -> T:
        try:
            return await coro
        except ResponseError as exc:
            if cannot_write(exc):  # guard: cannot write is unavailable
                self.write_error = str(exc)
                raise unavailable(exc) from None
            raise
        except ERRORS as exc:
            raise StoreUnavailable(str(exc)) from None

    async def _acked(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script whose result a client is told: with REDIS_WAIT_REPLICAS, followed by
        WAIT on the same connection, so the answer comes only once that many replicas
        hold the write (a Sentinel failover then loses nothing acknowledged)."""
        wanted = self.settings.redis_wait_replicas
        if not wanted or self.cluster:  # (WAIT has no key to route it by in a Cluster)
            return await self._call(self._scripts[name](keys=keys, args=args))

        async def run() -> Any:
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._scripts[name](keys=keys, args=args, client=pipe)
                pipe.execute_command("WAIT", wanted, self.settings.redis_wait_ms)
                return await pipe.execute()

        result, replicas = await self._call(run())
        if int(replicas) < wanted:  # guard: acked on replicas
            self.unreplicated += 1
            raise StoreUnavailable(f"written, but on {replicas} of {wanted} replicas")
        return result

    # -- the contract ----------------------------------------------------------

    async def list_shows(self) -> list[str]:
        members = await self._call(self.redis.smembers(f"{self.prefix}:shows"))
        return sorted(m.decode() for m in members)

    async def create_show(self, state: ShowState) -> None:
        self.writable()
        args = []
        for name, value in state.fields().items():
            args += [name, value]
        # the script touches only the show's own slot (Cluster-safe); the global list
        # of shows is added to afterwards
        created = await self._call(
            self._scripts["create"](keys=[self.k(state.slug, "f"), self.k(state.slug, "seq")], args=args)
        )
        if not created:
            raise Conflict(state.slug)
        await self._call(self.redis.sadd(f"{self.prefix}:shows", state.slug))

    async def load(self, slug: str) -> ShowState | None:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.k(slug, "f")).get(self.k(slug, "seq")).hgetall(self.k(slug, "upv"))
                pipe.get(self.k(slug, "pseq"))
                pipe.hgetall(self.k(slug, "likes")).get(self.k(slug, "peak")).hlen(self.k(slug, "devs"))
                return await pipe.execute()

        fields, seq, upv, pseq, likes, peak, uniq = await self._call(read())
        if not fields:
            return None
        state = ShowState.from_fields(
            slug, {k.decode(): v for k, v in fields.items()}, {k.decode(): int(v) for k, v in upv.items()}
        )
        state.seq, state.pseq = int(seq or 0), int(pseq or 0)
        votes = await self.vote_counts(slug, state.round.index) if state.round.index else VoteCounts.empty()
        state.counters = Counters(
            _counts(likes), votes.counted, 0, int(peak or 0), int(uniq), held=votes.held, held_reasons=votes.reasons
        )
        return state

    async def commit(
        self, slug: str, events: list[dict[str, Any]], expect: dict[str, bytes | None] | None = None
    ) -> int:
        self.writable()
        now = int(time.time() * 1000)
        args: list[Any] = [self.channel(slug), slug, now, self.settings.timeline_max, len(expect or {})]
        for name, value in (expect or {}).items():
            # "" must be absent; "=v" must be v; "?v" must be v or absent (a default)
            args += [name, b"" if value is None else (b"?" if isinstance(value, OrAbsent) else b"=") + value]
        args.append(len(events))
        for event in events:
            fields = fields_of(event)
            args += [orjson.dumps(event), 1 if is_public(event) else 0, len(fields)]
            for name, value in fields.items():
                args += [name, value]
        seq = await self._acked(
            "commit", [self.k(slug, "f"), self.k(slug, "seq"), self.k(slug, "tl"), self.k(slug, "pseq")], args
        )
        if seq == -2:  # guard: a show gone from Redis
            self.lose(f"the show {slug} is gone from Redis (it restarted empty or was flushed)")
            self.writable()
        if seq == -1:
            raise Conflict(slug)
        for event in events:  # back on air after an end: its keys are kept again
            if event["type"] == "show" and event["show"].get("status") in ("live", "draft"):
                await self._retain(slug, None)
        return int(seq)

    async def _retain(self, slug: str, ttl_s: int | None) -> int:
        """Give every key of a show an expiry (None: take it away); how many keys."""
        keys = [key async for key in self.redis.scan_iter(match=self.k(slug, "*"), count=1000)]
        if not keys:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                if ttl_s is None:
                    pipe.persist(key)
                else:
                    pipe.expire(key, ttl_s)
            await pipe.execute()
        return len(keys)

    async def unload(self, slug: str) -> bool:
        """An ended show this process let go of: its keys expire after ENDED_RETENTION_S
        (each process that unloads it sets the expiry again; a show back on air keeps them)."""
        retention = self.settings.ended_retention_s
        if retention <= 0:
            return True

        async def run() -> Any:
            if await self.redis.hget(self.k(slug, "f"), "status") == orjson.dumps("ended"):  # guard: ended expiry
                await self._retain(slug, retention)

        await self._call(run())
        return True

    async def signal(self, slug: str, frame: dict[str, Any]) -> None:
        message = b"%s\n0\n0\n%s" % (slug.encode(), orjson.dumps(frame))
        publish = self.redis.spublish if self.cluster else self.redis.publish
        await self._call(publish(self.channel(slug), message))

    async def next_question_id(self, slug: str) -> str:
        self.writable()
        return "q%d" % await self._call(self.redis.incr(self.k(slug, "qid")))

    def _ballot_keys(self, slug: str, box: Box) -> tuple[str, list[str]]:
        """The role of a box ("" for a round) and the keys its ballot scripts touch."""
        role = box if box in STANCE_BOXES else ""
        other = OTHER.get(str(box), "none")
        keys = [
            self.k(slug, f"v:{box}"),
            self.k(slug, f"vc:{box}"),
            self.k(slug, f"vn:{box}"),
            self.k(slug, f"v:{other}"),
            self.k(slug, "sm"),
        ]
        return str(role), keys

    def _present(self, slug: str, result: Any) -> Any:
        """A ballot or upvote script's result, unless it found the show gone from Redis
        (flushed, or restarted empty): then the state is lost, before any tick notices,
        and nothing was written or is acknowledged."""
        if result == -2:  # guard: a show gone from Redis (ballots)
            self.lose(f"the show {slug} is gone from Redis (it restarted empty or was flushed)")
            self.writable()
        return result

    async def vote(self, slug: str, box: Box, device: str, side: str, voter: Voter) -> Ballot:
        self.writable()
        now = int(time.time() * 1000)
        burst = self.k(slug, f"vb:{box}:{voter.network}|{side}|{integrity.burst_bucket(now)}")
        young = integrity.young(voter, now, self.vote_policy)
        policy = self.vote_policy
        role, keys = self._ballot_keys(slug, box)
        raw = await self._acked(
            "vote",
            [*keys, burst, self.k(slug, "f")],
            [role, device, side, voter.network, int(voter.venue), int(young), policy.per_network, policy.burst],
        )
        return Ballot.decode(self._present(slug, raw).decode())

    async def unvote(self, slug: str, box: Box, device: str) -> None:
        self.writable()
        role, keys = self._ballot_keys(slug, box)
        self._present(slug, await self._acked("unvote", [*keys, self.k(slug, "f")], [role, device]))

    async def release_votes(self, slug: str, box: Box, reason: str) -> int:
        self.writable()
        role, keys = self._ballot_keys(slug, box)
        return int(self._present(slug, await self._acked("release", [*keys, self.k(slug, "f")], [role, reason])))

    async def device_state(self, slug: str, round_index: int, device: str) -> DeviceState:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.k(slug, f"v:{round_index}"), device).smembers(self.k(slug, f"upd:{device}"))
                for box in STANCE_BOXES:
                    pipe.hget(self.k(slug, f"v:{box}"), device)
                return await pipe.execute()

        vote, upvoted, *stances = await self._call(read())
        sides = {box: raw.decode().split("|", 1)[0] for box, raw in zip(STANCE_BOXES, stances) if raw}
        return DeviceState(vote.decode().split("|", 1)[0] if vote else None, sorted(q.decode() for q in upvoted), sides)

    async def stance_counts(self, slug: str) -> StanceCounts:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.k(slug, "vc:pre")).hgetall(self.k(slug, "vc:post")).hgetall(self.k(slug, "sm"))
                return await pipe.execute()

        pre, post, matrix = await self._call(read())
        return _stance_counts(pre, post, matrix)

    async def upvote(self, slug: str, qid: str, device: str) -> int | None:
        self.writable()
        keys = [self.k(slug, f"upq:{qid}"), self.k(slug, f"upd:{device}"), self.k(slug, "upv"), self.k(slug, "f")]
        count = self._present(slug, await self._acked("upvote", keys, [device, qid]))
        return None if count == -1 else int(count)

    async def vote_counts(self, slug: str, box: Box) -> VoteCounts:
        return _vote_counts(await self._call(self.redis.hgetall(self.k(slug, f"vc:{box}"))))

    async def tick(
        self, slug: str, likes: dict[str, list[int]], round_index: int, viewers: int, overlays: int = 0
    ) -> Counters:
        self.writable()  # the likes stay with the caller
        now = int(time.time() * 1000)
        ttl_ms = self.settings.viewer_ttl_s * 1000
        keys, args = self._likes_call(slug, likes)
        if likes and self.cluster:  # a Cluster pipeline runs no scripts: the likes first, alone
            await self._call(self._scripts["likes"](keys=keys, args=args))

        async def run() -> Any:
            async with self.redis.pipeline(transaction=False) as pipe:
                if likes and not self.cluster:  # guard: like cap (redis)
                    await self._scripts["likes"](keys=keys, args=args, client=pipe)
                pipe.hset(self.k(slug, "view"), self.proc, b"%d,%d" % (viewers, overlays))
                pipe.zadd(self.k(slug, "alive"), {self.proc: now + ttl_ms})
                if likes and self.settings.redis_wait_replicas and not self.cluster:  # replicas hold them first
                    pipe.execute_command("WAIT", self.settings.redis_wait_replicas, self.settings.redis_wait_ms)
                pipe.hgetall(self.k(slug, "likes"))
                pipe.hgetall(self.k(slug, f"vc:{round_index}"))
                pipe.hgetall(self.k(slug, "view"))
                pipe.zrangebyscore(self.k(slug, "alive"), now, "+inf")
                pipe.hlen(self.k(slug, "devs"))
                pipe.get(self.epoch_key)
                return await pipe.execute(raise_on_error=False)

        # Every command of the pipeline runs and answers on its own: the likes script
        # either counted this process's taps or (refused at its first write) did not.
        results = await self._call(run())
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            error = self._tick_error(failed[0])
            counted = self.cluster or not isinstance(results[0], Exception)  # (a Cluster's: before the pipeline)
            error.likes_taken = bool(likes) and counted  # guard: likes taken
            raise error
        like_counts, vote_counts, views, alive, uniq, epoch = results[-6:]
        self._seen_epoch(_text(epoch or b""))
        if self.lost:  # counted (at most this one tick's taps), but not shown as the show's
            error = StateLost(self.lost)
            error.likes_taken = bool(likes)
            raise error
        total, total_overlays = _live_views(views, set(alive))
        try:
            peak = await self._call(self._scripts["peak"](keys=[self.k(slug, "peak")], args=[total]))
            if random.random() < 0.01:  # now and then, forget processes that died
                await self._call(self._prune(slug, now))
        except StoreUnavailable as exc:
            exc.likes_taken = bool(likes)  # they are in: no tally this time
            raise
        votes = _vote_counts(vote_counts) if round_index else VoteCounts.empty()
        return Counters(
            _counts(like_counts),
            votes.counted,
            total,
            int(peak),
            int(uniq),
            total_overlays,
            held=votes.held,
            held_reasons=votes.reasons,
        )

    def _likes_call(self, slug: str, likes: dict[str, list[int]]) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the likes script for these devices' taps."""
        keys = [self.k(slug, "likes"), *(self.k(slug, f"lb:{device}") for device in likes)]
        args: list[Any] = [self.settings.like_rate, self.settings.like_burst]
        for taps in likes.values():
            args += taps
        return keys, args

    def _tick_error(self, exc: Exception) -> StoreUnavailable:
        if isinstance(exc, ResponseError) and not cannot_write(exc):
            if str(exc) not in self._told and len(self._told) < 100:  # once, not every tick
                self._told.add(str(exc))
                log.error("tick: Redis answered %s", exc)
            return StoreUnavailable(str(exc))
        if isinstance(exc, ResponseError):
            self.write_error = str(exc)
            return unavailable(exc)
        return StoreUnavailable(str(exc))

    async def _prune(self, slug: str, now: int) -> None:
        dead = await self.redis.zrangebyscore(self.k(slug, "alive"), "-inf", now - 60_000)
        if dead:
            await self.redis.hdel(self.k(slug, "view"), *dead)
            await self.redis.zrem(self.k(slug, "alive"), *dead)

    async def reset_counters(self, slug: str) -> None:
        self.writable()

        async def run() -> Any:
            keys = [self.k(slug, name) for name in ("likes", "peak", "devs")]
            keys.append(self.k(slug, "sm"))
            for pattern in ("v:*", "vc:*", "vn:*"):
                keys += [key async for key in self.redis.scan_iter(match=self.k(slug, pattern), count=1000)]
            await self.redis.delete(*keys)

        await self._call(run())

    async def see_device(self, slug: str, device: str) -> int:
        async def run() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self.k(slug, "devs"), device, int(time.time() * 1000))
                pipe.hget(self.k(slug, "devs"), device)
                return await pipe.execute()

        _, first = await self._call(run())
        return int(first)

    async def take(self, slug: str, holder: str, kind: str, rate: float, burst: float) -> float:
        wait = await self._call(self._scripts["take"](keys=[self.k(slug, f"b:{holder}:{kind}")], args=[rate, burst]))
        return float(wait)

    def replies(self, slug: str) -> Replies:
        return RedisReplies(self, slug)

    async def once(self, key: str, ttl_s: int) -> bool:
        return bool(await self._call(self.redis.set(f"{self.prefix}:once:{key}", 1, nx=True, ex=ttl_s)))

    async def count(self, key: str, window_s: int) -> int:
        async def run() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(f"{self.prefix}:n:{key}")
                pipe.expire(f"{self.prefix}:n:{key}", window_s, nx=True)
                return await pipe.execute()

        n, _ = await self._call(run())
        return int(n)

    async def sample(self, slug: str, seq: int, data: dict[str, Any]) -> None:
        """One sample per interval for the whole show: the first process to claim it writes it."""
        self.writable()
        now = int(time.time() * 1000)
        period = max(1, self.settings.sample_s)
        bucket = now // (period * 1000)
        body = orjson.dumps({"type": "sample", **data})
        await self._call(
            self._scripts["sample"](
                keys=[self.k(slug, f"sample:{bucket}"), self.k(slug, "tl")],
                args=[period * 2, self.settings.timeline_max, seq, now, body],
            )
        )

    async def timeline(self, slug: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        last = "-"
        while True:
            batch = await self._call(self.redis.xrange(self.k(slug, "tl"), min=last, count=5000))
            if last != "-":
                batch = batch[1:]
            if not batch:
                return out
            for _entry_id, entry in batch:
                out.append({"seq": int(entry[b"seq"]), "ts": int(entry[b"ts"]), **orjson.loads(entry[b"e"])})
            last = batch[-1][0]


def _live_views(views: dict[bytes, bytes], live: set[bytes]) -> tuple[int, int]:
    """Viewers and overlays summed over the processes still alive ("viewers,overlays" each)."""
    total = total_overlays = 0
    for proc, value in views.items():
        if proc in live:
            v, _, o = value.partition(b",")
            total += int(v)
            total_overlays += int(o or 0)
    return total, total_overlays
