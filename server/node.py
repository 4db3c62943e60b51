"""The node: one process's view of every show it serves.

It keeps a replica of each show (folded from the store's events), turns client
messages into store calls, fans events out to the local sockets, and runs the
tick that flushes likes and sends coalesced tallies.
"""

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from . import protocol
from .domain import DomainError
from .domain import show as dshow
from .domain.likes import LikeBuffer
from .domain.questions import PENDING, Question
from .domain.ratelimit import TokenBucket
from .domain.show import ShowState
from .domain.text import normalise, single_line
from .hub import Conn, Room
from .metrics import STATS
from .protocol import Message, ProtocolError
from .settings import Settings
from .store import Conflict, Store, StoreUnavailable

log = logging.getLogger("leitai.node")

PUBLIC_ROLES = ("overlay", "audience")
REPLY_CACHE = 20_000  # client ids remembered per show
TRANSIENT = frozenset(("unavailable", "rate_limited"))  # worth retrying with the same id
CAS_RETRIES = 8


def now_ms() -> int:
    return int(time.time() * 1000)


def device_hash(device: str) -> str:
    return hashlib.sha256(device.encode()).hexdigest()[:12]


@dataclass
class Runtime:
    """One show in this process."""

    state: ShowState
    room: Room
    likes: LikeBuffer = field(default_factory=LikeBuffer)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fast_tally: bytes = b""
    phone_tallies: list[bytes] = field(default_factory=list)  # last tally sent, per phone group
    resyncing: bool = False
    # per-device token buckets, kept while the device has a socket here
    device_buckets: dict[str, dict[str, TokenBucket]] = field(default_factory=dict)
    # replies to recent client ids, so a resent message is applied once and answered the same
    replies: "OrderedDict[tuple[str, str], asyncio.Future]" = field(default_factory=OrderedDict)


class Node:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.shows: dict[str, Runtime] = {}
        self._loading: dict[str, asyncio.Future] = {}
        self._tick_task: asyncio.Task | None = None
        self._ticks = 0
        self.wordfilter = None  # set by the app: a callable text -> bool (flagged)
        self.metrics = None  # set by the app
        self.phone_groups = max(1, round(settings.phone_tick_ms / settings.tick_ms))
        store.on_event = self._on_event
        store.on_signal = self._on_signal
        store.on_resync = self._on_resync

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="leitai-tick")

    async def stop(self) -> None:
        """Flush likes, close every socket with 1012, close the store."""
        if self._tick_task:
            self._tick_task.cancel()
            try:
                await self._tick_task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await self._tick_once(final=True)
        except Exception:
            log.exception("final flush failed")
        for rt in self.shows.values():
            for conn in rt.room.all():
                await conn.close(1012)
        await self.store.close()

    async def runtime(self, slug: str) -> Runtime | None:
        rt = self.shows.get(slug)
        if rt is not None:
            return rt
        pending = self._loading.get(slug)
        if pending is None:
            pending = self._loading[slug] = asyncio.ensure_future(self._load(slug))
        try:
            return await asyncio.shield(pending)
        finally:
            self._loading.pop(slug, None)

    async def _load(self, slug: str) -> Runtime | None:
        state = await self.store.load(slug)
        if state is None:
            return None
        rt = self.shows.get(slug)
        if rt is None:
            groups = self.phone_groups
            rt = self.shows[slug] = Runtime(state, Room(groups), phone_tallies=[b""] * groups)
        return rt

    # -- events from the store -------------------------------------------------

    def _on_event(self, slug: str, seq: int, pseq: int, event: dict) -> None:
        rt = self.shows.get(slug)
        if rt is None or rt.resyncing or seq <= rt.state.seq:
            return
        if seq != rt.state.seq + 1:
            log.warning("gap in %s events (%d after %d): resync", slug, seq, rt.state.seq)
            asyncio.get_running_loop().create_task(self.resync(slug))
            return
        rt.state.apply(event)
        rt.state.seq = seq
        if pseq:
            rt.state.pseq = pseq
        if event["type"] == "show" and "banned" in event["show"]:
            banned = set(rt.state.banned)
            for conn in rt.room.conns["audience"]:
                conn.banned = conn.dhash in banned
        self._fan_out(rt, seq, pseq, event)

    def _fan_out(self, rt: Runtime, seq: int, pseq: int, event: dict) -> None:
        """Consoles get every event under `seq`; phones and overlays get the public
        ones under `pseq`; an asker gets their own not-yet-public question without a
        seq (it is theirs, not part of the show's public stream)."""
        console, public, mine = dshow.event_views(event, now_ms())
        room = rt.room
        room.broadcast(("console",), protocol.with_seq(seq, protocol.encode(console)))
        if public is not None and pseq:
            room.broadcast(PUBLIC_ROLES, protocol.with_seq(pseq, protocol.encode(public)))
        if mine is not None:  # after the public frame, so the asker ends with their own view
            owners = room.by_device.get(event["question"]["device"])
            if owners:
                mine_bytes = protocol.encode(mine)
                for conn in owners:
                    conn.send(mine_bytes)

    def _on_signal(self, slug: str, frame: dict) -> None:
        rt = self.shows.get(slug)
        if rt is not None and frame.get("type") == "reload":
            rt.room.broadcast(("overlay",), protocol.encode(frame))

    def _on_resync(self) -> None:
        for slug in list(self.shows):
            asyncio.get_running_loop().create_task(self.resync(slug))

    async def resync(self, slug: str) -> None:
        """Reload a replica from the store and send every local socket a fresh snapshot."""
        rt = self.shows.get(slug)
        if rt is None or rt.resyncing:
            return
        rt.resyncing = True
        try:
            while True:
                try:
                    state = await self.store.load(slug)
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.5)
            if state is None:
                return
            rt.state = state
            rt.fast_tally = b""
            rt.phone_tallies = [b""] * len(rt.phone_tallies)
        finally:
            rt.resyncing = False
        for conn in rt.room.all():
            await self.send_snapshot(rt, conn)

    # -- sockets -----------------------------------------------------------------

    async def join(self, rt: Runtime, conn: Conn) -> None:
        conn.banned = bool(conn.dhash) and conn.dhash in rt.state.banned
        rt.room.add(conn)
        conn.start()
        if conn.role == "audience":
            try:
                await self.store.see_device(rt.state.slug, conn.dhash)
            except StoreUnavailable:
                pass
        await self.send_snapshot(rt, conn)

    def leave(self, rt: Runtime, conn: Conn) -> None:
        conn.stop()
        rt.room.remove(conn)
        if conn.dhash and conn.dhash not in rt.room.by_device:
            rt.device_buckets.pop(conn.dhash, None)

    async def send_snapshot(self, rt: Runtime, conn: Conn) -> None:
        state = rt.state
        now = now_ms()
        seq = state.seq if conn.role == "console" else state.pseq
        frame: dict = {"type": "snapshot", "seq": seq, "role": conn.role, "server_time": now}
        show = state.view(now, console=conn.role == "console")
        if conn.role == "audience":
            own = [{**q.public_view(), "mine": True} for q in state.questions.values()
                   if q.device == conn.dhash and not q.public]
            show["questions"].extend(own)
            try:
                vote, upvoted = await self.store.device_state(state.slug, state.round.index, conn.dhash)
            except StoreUnavailable:
                vote, upvoted = None, []
            frame["you"] = {"vote": vote if state.round.index else None, "upvoted": upvoted,
                            "banned": conn.banned}
        frame["show"] = show
        conn.send(protocol.encode(frame))

    # -- client messages ---------------------------------------------------------

    def _limit(self, rt: Runtime, conn: Conn, kind: str, rate: float, burst: float,
               msg_id: str | None, now: float, message: str = "too fast, slow down") -> None:
        """Per connection, and per device across its sockets (phones)."""
        holders = (conn.buckets, rt.device_buckets.get(conn.dhash) or
                   rt.device_buckets.setdefault(conn.dhash, {})) if conn.dhash else (conn.buckets,)
        for buckets in holders:
            bucket = buckets.get(kind)
            if bucket is None:
                bucket = buckets[kind] = TokenBucket(rate, burst)
            wait = bucket.take(now)
            if wait:
                raise ProtocolError("rate_limited", message, msg_id, retry_ms=int(wait * 1000) + 1)

    async def handle(self, rt: Runtime, conn: Conn, msg: Message) -> bytes | None:
        """Carry out one valid message; return the reply (ack or error) or None.

        A message whose `id` this device (or the console) already sent is not
        applied again: it gets the first one's reply. Transient errors are not
        remembered, so a retry with the same id is tried afresh.
        """
        if msg.id is None or msg.type in ("like", "hello"):
            return await self._reply(rt, conn, msg)
        key = (conn.dhash or conn.role, msg.id)
        cached = rt.replies.get(key)
        if cached is not None:
            return await asyncio.shield(cached)
        future = asyncio.get_running_loop().create_future()
        rt.replies[key] = future
        if len(rt.replies) > REPLY_CACHE:
            rt.replies.popitem(last=False)
        try:
            reply = await self._reply(rt, conn, msg)
        except BaseException:
            rt.replies.pop(key, None)
            future.set_result(protocol.error("unavailable", "try again", msg.id))
            raise
        future.set_result(reply)
        if reply is not None and reply.startswith(b'{"type":"error"') and any(
                b'"code":"%s"' % code.encode() in reply for code in TRANSIENT):
            rt.replies.pop(key, None)
        return reply

    async def _reply(self, rt: Runtime, conn: Conn, msg: Message) -> bytes | None:
        try:
            return await self._handle(rt, conn, msg)
        except ProtocolError as exc:
            error = exc
        except DomainError as exc:
            error = ProtocolError(exc.code, exc.message, msg.id)
        except StoreUnavailable:
            error = ProtocolError("unavailable", "the show is briefly unavailable; try again", msg.id)
        STATS.errors[error.code] += 1
        return error.frame()

    async def _handle(self, rt: Runtime, conn: Conn, msg: Message) -> bytes | None:
        s = self.settings
        kind = msg.type
        mono = time.monotonic()
        slug = rt.state.slug
        if kind == "hello":
            return protocol.ack(msg.id) if msg.id else None
        if kind == "like":
            self._limit(rt, conn, "like", s.like_rate, s.like_burst, msg.id, mono)
            if not conn.banned:  # a banned device's taps no longer count
                rt.likes.add(msg.side, msg.count)
                STATS.likes += msg.count
            return protocol.ack(msg.id) if msg.id else None
        if conn.banned:
            raise ProtocolError("forbidden", "this device can no longer take part", msg.id)
        if kind == "vote":
            self._limit(rt, conn, "vote", s.vote_rate, s.vote_burst, msg.id, mono)
            rnd = rt.state.round
            if not rnd.open:
                raise DomainError("conflict", "no round is open for voting")
            await self.store.vote(slug, rnd.index, conn.dhash, msg.side)
            return protocol.ack(msg.id, side=msg.side) if msg.id else None
        if kind == "ask":
            return await self._ask(rt, conn, msg, mono)
        if kind == "upvote":
            self._limit(rt, conn, "upvote", s.upvote_rate, s.upvote_burst, msg.id, mono)
            q = dshow.decide_upvote(rt.state, msg.question)
            count = await self.store.upvote(slug, q.id, conn.dhash)
            if count is None:
                raise DomainError("conflict", "already upvoted")
            await self.store.commit(slug, [{"type": "question",
                                            "question": replace(q, upvotes=count).record()}])
            return protocol.ack(msg.id) if msg.id else None
        # console
        self._limit(rt, conn, "console", s.console_rate, s.console_burst, msg.id, mono)
        if kind == "overlay.reload":
            await self.store.signal(slug, {"type": "reload"})
            return protocol.ack(msg.id) if msg.id else None
        await self._host_action(rt, msg)
        return protocol.ack(msg.id) if msg.id else None

    async def _ask(self, rt: Runtime, conn: Conn, msg: Message, mono: float) -> bytes | None:
        s = self.settings
        text = normalise(msg.text)
        name = single_line(msg.name)
        if not text:
            raise ProtocolError("invalid", "the question is empty", msg.id)
        if len(text) > s.question_max:
            raise ProtocolError("too_large", f"a question has at most {s.question_max} characters", msg.id)
        if len(name) > s.name_max:
            raise ProtocolError("too_large", f"a name has at most {s.name_max} characters", msg.id)
        self._limit(rt, conn, "ask", 1.0 / s.question_interval_s, 1.0, msg.id, mono,
                    "one question every few seconds; try again shortly")
        flagged = bool(self.wordfilter and (self.wordfilter(text) or self.wordfilter(name)))
        if flagged and s.reject_flagged:
            raise ProtocolError("invalid", "this question cannot be accepted", msg.id)
        slug = rt.state.slug
        qid = await self.store.next_question_id(slug)
        q = Question(qid, text, name, PENDING, now_ms(), conn.dhash, 0, flagged)
        await self.store.commit(slug, [dshow.private({"type": "question", "question": q.record()})])
        return protocol.ack(msg.id, question=qid) if msg.id else None

    async def _host_action(self, rt: Runtime, msg: Message) -> None:
        """Decide on the replica, commit with compare-and-set; retry if it moved."""
        slug = rt.state.slug
        kind = msg.type

        async def decide(state: ShowState) -> list[dict]:
            if kind.startswith("question."):
                return dshow.decide_moderation(state, msg.question, kind.split(".", 1)[1])
            if kind == "round.start":
                topic = single_line(msg.topic)
                if len(topic) > self.settings.topic_max:
                    raise ProtocolError("too_large", "topic too long", msg.id)
                if not topic:
                    raise ProtocolError("invalid", "a round needs a topic", msg.id)
                return dshow.decide_round(state, "start", now_ms(), topic, msg.duration_s)
            if kind == "round.end":
                votes = await self.store.vote_counts(slug, state.round.index)
                return dshow.decide_round(state, "end", now_ms(), votes=votes)
            if kind.startswith("round."):
                return dshow.decide_round(state, kind.split(".", 1)[1], now_ms())
            if kind == "points.set":
                return dshow.decide_points(state, msg.side, msg.points)
            if kind in ("device.ban", "device.unban"):
                return dshow.decide_ban(state, msg.device, kind == "device.ban")
            raise ProtocolError("invalid", "unknown action", msg.id)

        state = await self._commit_decided(rt, decide)
        if kind == "device.ban" and state.round.open:
            await self.store.unvote(slug, state.round.index, msg.device)

    # -- producer actions ------------------------------------------------------------

    async def edit_show(self, slug: str, changes: dict) -> None:
        rt = await self.runtime(slug)
        if rt is None:
            raise DomainError("not_found", f"no show {slug}")
        async def decide(state: ShowState) -> list[dict]:
            return dshow.decide_edit(state, changes)

        await self._commit_decided(rt, decide)

    async def rehearsal_reset(self, slug: str) -> None:
        """Zero an episode's counters (after the producer confirmed it)."""
        rt = await self.runtime(slug)
        if rt is None:
            raise DomainError("not_found", f"no show {slug}")
        async def decide(state: ShowState) -> list[dict]:
            return dshow.decide_reset(state, now_ms())

        await self._commit_decided(rt, decide)
        await self.store.reset_counters(slug)

    async def _commit_decided(self, rt: Runtime, decide) -> ShowState:
        """Decide on the replica and commit with compare-and-set on the fields the
        events write; if another process moved them first, wait for the replica to
        catch up through the event stream and decide again. Returns the state the
        decision was made on."""
        async with rt.lock:
            for attempt in range(CAS_RETRIES):
                state = rt.state
                events = await decide(state)
                if not events:
                    return state
                names = {name for event in events for name in dshow.fields_of(event)}
                try:
                    await self.store.commit(state.slug, events,
                                            {n: dshow.field_value(state, n) for n in names})
                    return state
                except Conflict:
                    await asyncio.sleep(0.02 * (attempt + 1))
            raise DomainError("conflict", "the show changed meanwhile; try again")

    # -- the tick ----------------------------------------------------------------

    async def _tick_loop(self) -> None:
        period = self.settings.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            try:
                await self._tick_once()
            except Exception:
                log.exception("tick failed")
            delay = next_at - loop.time()
            if delay < 0:  # overran: skip the missed ticks rather than bunch them up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def _tick_once(self, final: bool = False) -> None:
        started = time.perf_counter()
        try:
            await self._tick_shows(final)
        finally:
            if self.metrics is not None:
                self.metrics.tick_seconds.observe(time.perf_counter() - started)

    async def _tick_shows(self, final: bool) -> None:
        self._ticks += 1
        phone_group = self._ticks % self.phone_groups
        sample_every = max(1, round(self.settings.sample_s * 1000 / self.settings.tick_ms))
        sample_due = self._ticks % sample_every == 0
        for rt in list(self.shows.values()):
            if not rt.room and not rt.likes and not final:
                continue
            await self._tick_show(rt, phone_group, sample_due)

    async def _tick_show(self, rt: Runtime, phone_group: int, sample_due: bool) -> None:
        state = rt.state
        slug = state.slug
        deltas = rt.likes.drain()
        try:
            counters = await self.store.tick(slug, deltas, state.round.index,
                                             rt.room.count("audience"), rt.room.count("overlay"))
        except StoreUnavailable:
            rt.likes.restore(deltas, self.settings.outage_likes_max)
            return
        state.counters = counters
        body = protocol.encode({"type": "tally", **state.tally()})
        if body != rt.fast_tally:
            rt.fast_tally = body
            rt.room.broadcast(("overlay",), protocol.with_seq(state.pseq, body))
            rt.room.broadcast(("console",), protocol.with_seq(state.seq, body))
        # one group of phones per tick: each phone every PHONE_TICK_MS, the writes spread out
        if body != rt.phone_tallies[phone_group]:
            rt.phone_tallies[phone_group] = body
            rt.room.send_group(rt.room.phone_groups[phone_group], protocol.with_seq(state.pseq, body))
        if sample_due and rt.room:
            try:
                await self.store.sample(slug, state.seq, {
                    "likes": counters.likes, "votes": counters.votes, "viewers": counters.viewers,
                    "round": state.round.index})
            except StoreUnavailable:
                pass

