"""Replicas: this process's copy of each show it serves, folded from the store's
events, and the fan-out of each event to the show's local sockets.

A socket is added to its show's room *held*: frames are not written to it
until its snapshot has been built from the replica and sent, in one step with
no await in between. So the snapshot is always a socket's first frame, and
nothing the snapshot already holds is sent again. A resync (a gap in the
events, or the store reconnected) holds every socket of the show the same way.
"""

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import protocol
from ..domain import show as dshow
from ..domain.likes import LikeBuffer
from ..domain.show import ShowState
from ..hub import Conn, Room
from ..metrics import STATS
from ..store import Store, StoreUnavailable
from .clusters import Clusters
from .tasks import Tasks
from .venues import Venues

log = logging.getLogger("leitai.node")

PUBLIC_ROLES = ("overlay", "audience")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Undo:
    """What one moderation action changed: the questions before and after, the question on air before."""

    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    featured: str | None


UNDO_DEPTH = 20
DESK_TTL_MS = 120_000  # a moderator who says nothing for this long is no longer on a card


class Ring:
    """The last frames of one stream (consoles' under `seq`, phones' and overlays' under
    `pseq`): every frame with a seq in (base, the replica's seq] is here, so a client
    that comes back with a seq in [base, now] gets only what it missed."""

    __slots__ = ("base", "frames")

    def __init__(self, size: int, base: int = 0) -> None:
        self.frames: deque[tuple[int, bytes]] = deque(maxlen=max(1, size))
        self.base = base

    def reset(self, base: int) -> None:
        """The replica was (re)loaded: nothing before `base` is known here."""
        self.frames.clear()
        self.base = base

    def add(self, seq: int, frame: bytes) -> None:
        if len(self.frames) == self.frames.maxlen:
            self.base = self.frames[0][0]
        self.frames.append((seq, frame))

    def since(self, seq: int, now: int) -> list[bytes] | None:
        """The frames after `seq`, or None if some of them are no longer (or never were) here."""
        if not self.base <= seq <= now:  # guard: resume only from what the ring holds
            return None
        return [frame for s, frame in self.frames if s > seq]


@dataclass
class Runtime:
    """One show in this process."""

    state: ShowState
    room: Room
    likes: LikeBuffer = field(default_factory=LikeBuffer)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # host actions: one decision at a time
    fast_tally: bytes = b""  # the last tally sent to overlays
    console_tally: bytes = b""
    phone_tallies: list[bytes] = field(default_factory=list)  # last tally sent, per phone group
    resyncing: bool = False
    held_events: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # arrived while resyncing
    synced: asyncio.Event = field(default_factory=asyncio.Event)  # clear while resyncing
    undo: dict[str, list[Undo]] = field(default_factory=dict)  # per moderator, their last actions
    clusters: Clusters = field(default_factory=Clusters)
    desk: dict[str, dict[str, Any]] = field(default_factory=dict)  # moderator -> {name, question, at}
    idle_since: float = 0.0  # ended and without sockets since (monotonic), for the unload
    following: bool = False  # the store delivers this show's events here (it has sockets)
    rings: dict[str, Ring] = field(default_factory=dict)  # "console", "public": the last frames
    follow_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.synced.set()

    def reset_rings(self, size: int) -> None:
        self.rings = {"console": Ring(size, self.state.seq), "public": Ring(size, self.state.pseq)}


class Replicas:
    def __init__(
        self, store: Store, phone_groups: int, tasks: Tasks, venues: Venues, min_watch_ms: int, ring_size: int = 512
    ) -> None:
        self.store = store
        self.ring_size = ring_size
        self.phone_groups = phone_groups
        self.venues = venues
        self.min_watch_ms = min_watch_ms
        self.tasks = tasks
        self.shows: dict[str, Runtime] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        store.on_event = self.on_event
        store.on_signal = self.on_signal
        store.on_resync = self.on_resync
        store.on_lost = self.on_lost

    async def get(self, slug: str) -> Runtime | None:
        rt = self.shows.get(slug)
        if rt is not None and (rt.following or not self.store.selective):
            return rt
        # a show this process does not follow is read afresh (its events do not come here)
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
            rt.reset_rings(self.ring_size)
        elif not rt.following and not rt.resyncing and state.seq >= rt.state.seq:
            rt.state = state
            rt.clusters = Clusters()
            rt.reset_rings(self.ring_size)
        return rt

    async def follow(self, rt: Runtime) -> None:
        """Subscribe to the show's events (its first local socket is here), then reload
        the replica: it may be older than the subscription."""
        async with rt.follow_lock:
            if rt.following or not self.store.selective:
                return
            await self.store.follow(rt.state.slug)
            rt.following = True
        await self.resync(rt.state.slug)

    async def unfollow(self, rt: Runtime) -> None:
        """The show's last local socket left: stop receiving its events."""
        async with rt.follow_lock:
            if rt.room or not rt.following:
                return
            rt.following = False
            await self.store.unfollow(rt.state.slug)

    # -- events from the store -------------------------------------------------

    def on_event(self, slug: str, seq: int, pseq: int, event: dict[str, Any]) -> None:
        rt = self.shows.get(slug)
        # (a lost state's replica is the last true copy; a show not followed is read afresh)
        if rt is None or self.store.lost or (self.store.selective and not rt.following):
            return
        if rt.resyncing:
            rt.held_events.append((seq, pseq, event))
            return
        if seq <= rt.state.seq:
            return
        if seq != rt.state.seq + 1:
            log.warning("gap in %s events (%d after %d): resync", slug, seq, rt.state.seq)
            self.tasks.spawn(self.resync(slug), f"resync-{slug}")
            return
        self._apply(rt, seq, pseq, event)

    def _apply(self, rt: Runtime, seq: int, pseq: int, event: dict[str, Any]) -> None:
        rt.state.apply(event)
        rt.state.seq = seq
        if event["type"] == "question":
            rt.clusters.follow(rt.state.questions[event["question"]["id"]])
        if pseq:
            rt.state.pseq = pseq
        if event["type"] == "show" and "banned" in event["show"]:
            banned = set(rt.state.banned)
            for conn in rt.room.conns["audience"]:
                conn.banned = conn.dhash in banned or conn.parent in banned
        self.fan_out(rt, seq, pseq, event)

    def fan_out(self, rt: Runtime, seq: int, pseq: int, event: dict[str, Any]) -> None:
        """Consoles get every event under `seq`; phones and overlays get the public
        ones under `pseq`; an asker gets their own not-yet-public question without a
        seq (it is theirs, not part of the show's public stream)."""
        console, public, mine = dshow.event_views(event, now_ms())
        room = rt.room
        frame = protocol.with_seq(seq, protocol.encode(console))
        rt.rings["console"].add(seq, frame)
        room.broadcast(("console",), frame)
        if public is not None and pseq:
            frame = protocol.with_seq(pseq, protocol.encode(public))
            rt.rings["public"].add(pseq, frame)
            room.broadcast(PUBLIC_ROLES, frame)
        if mine is not None:  # after the public frame, so the asker ends with their own view
            owners = room.by_device.get(event["question"]["device"])
            if owners:
                room.send_group(owners, protocol.encode(mine))

    def on_signal(self, slug: str, frame: dict[str, Any]) -> None:
        rt = self.shows.get(slug)
        if rt is None:
            return
        if frame.get("type") == "reload":
            rt.room.broadcast(("overlay",), protocol.encode(frame))
        elif frame.get("type") == "desk":  # who is on which card: every console hears it
            moderator = frame.get("moderator") or {}
            if moderator.get("question") is None and moderator.get("left"):
                rt.desk.pop(moderator.get("id", ""), None)
            else:
                rt.desk[moderator.get("id", "")] = moderator
            rt.room.broadcast(("console",), protocol.encode(frame))

    def notice(self) -> dict[str, Any] | None:
        """What consoles are told while the store's state is lost."""
        if not self.store.lost:
            return None
        return {"type": "notice", "kind": "store_lost", "message": self.store.lost}

    def on_lost(self, reason: str) -> None:
        """The store's state is lost: every console hears it (and keeps its replica as it was)."""
        frame = protocol.encode(self.notice() or {})
        for rt in self.shows.values():
            rt.room.broadcast(("console",), frame)

    def on_resync(self) -> None:
        if self.store.lost:  # the replica is the last true copy: keep it
            return
        for slug in list(self.shows):
            self.tasks.spawn(self.resync(slug), f"resync-{slug}")

    async def resync(self, slug: str) -> None:
        """Reload a replica from the store and send every local socket a fresh snapshot."""
        rt = self.shows.get(slug)
        if rt is None or rt.resyncing or self.store.lost:
            return
        rt.resyncing = True
        rt.synced.clear()
        conns = [conn for conn in rt.room.all() if not conn.held]  # a joining one sends its own
        for conn in conns:
            conn.held = True
        try:
            while True:
                try:
                    state = await self.store.load(slug)
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.5)
            if state is None or state.seq < rt.state.seq:  # guard: seq backwards
                # gone from the store, or its history went back: not this show any more
                self.store.lose(
                    f"the show {slug} is gone from the store"
                    if state is None
                    else f"the show {slug} went back from seq {rt.state.seq} to {state.seq}"
                )
                state = rt.state  # keep serving the last true copy (read only)
            rt.state = state
            rt.clusters = Clusters()  # built again from the record when next needed
            rt.fast_tally = rt.console_tally = b""
            rt.phone_tallies = [b""] * len(rt.phone_tallies)
            personal = {conn: await self._personal(rt, conn) for conn in conns}
        finally:
            held, rt.held_events = rt.held_events, []
            rt.resyncing = False
            rt.synced.set()
        for seq, pseq, event in sorted(held, key=lambda e: e[0]):
            if seq == rt.state.seq + 1:
                rt.state.apply(event)
                rt.state.seq = seq
                if pseq:
                    rt.state.pseq = pseq
        rt.reset_rings(self.ring_size)  # what happened before the reload is not in the rings
        for conn in conns:
            self._send_snapshot(rt, conn, personal.get(conn))

    # -- sockets -----------------------------------------------------------------

    async def sweep(self, grace_s: float) -> list[str]:
        """Unload the shows that have ended and had no socket for `grace_s` seconds: the
        replica goes, and the store forgets its share (read back when next needed)."""
        now = time.monotonic()
        gone = []
        for slug, rt in list(self.shows.items()):
            if rt.state.status != "ended" or rt.room or rt.likes or rt.resyncing:
                rt.idle_since = 0.0
                continue
            if not rt.idle_since:
                rt.idle_since = now
            elif now - rt.idle_since >= grace_s:  # guard: unload
                del self.shows[slug]  # a socket that joins from here on loads it afresh
                gone.append(slug)
                try:
                    await self.store.unload(slug)
                except StoreUnavailable:
                    pass
        return gone

    async def join(self, rt: Runtime, conn: Conn) -> None:
        """Add a socket to its show; its first frame is its snapshot."""
        if self.shows.get(rt.state.slug) is not rt:  # unloaded while this socket was admitted
            self.tasks.spawn(conn.close(1012), "close-unloaded")  # it comes back to a fresh replica
            return
        banned = rt.state.banned
        conn.banned = bool(conn.dhash) and (conn.dhash in banned or conn.parent in banned)
        conn.held = True
        rt.room.add(conn)
        conn.start()
        if not rt.following:
            await self.follow(rt)
        if conn.role == "audience":
            try:
                conn.first_seen = await self.store.see_device(rt.state.slug, conn.dhash)
            except StoreUnavailable:
                conn.first_seen = now_ms()
        while rt.resyncing:
            await rt.synced.wait()
        if conn.resume is not None and self._resume(rt, conn, *conn.resume):
            return
        personal = await self._personal(rt, conn)
        while rt.resyncing:  # the resync started after this socket was added: wait it out
            await rt.synced.wait()
        self._send_snapshot(rt, conn, personal)

    def _resume(self, rt: Runtime, conn: Conn, since: int, epoch: str) -> bool:
        """A client that comes back with its last seq: `resumed`, then only the frames of
        its own stream it missed, if this process still has them all (else False: a
        snapshot). Phones and overlays resume from the public stream, never the console's."""
        state = rt.state
        console = conn.role == "console"
        if self.store.lost or not self.store.epoch or epoch != self.store.epoch:  # (a lost state: a snapshot says so)
            return False
        stream = "console" if console else "public"  # guard: resume in its own stream
        missed = rt.rings[stream].since(since, state.seq if console else state.pseq)
        if missed is None:
            return False
        now = now_ms()
        frame: dict[str, Any] = {
            "type": "resumed",
            "since": since,
            "seq": state.seq if console else state.pseq,
            "epoch": epoch,
            "missed": len(missed),
            "server_time": now,
            "tally": state.console_tally() if console else state.tally(),
        }
        if console:
            frame["desk"] = [m for m in rt.desk.values() if now - int(m.get("at", 0)) < DESK_TTL_MS]
            frame["moderator"] = conn.holder  # this console's own id in `desk` frames
        elif conn.role == "audience":
            frame["you"] = {"banned": conn.banned}
        conn.held = False
        conn.send(protocol.encode(frame))
        for payload in missed:
            conn.send(payload)
        if conn.role == "audience":  # its own questions not yet public (outside the stream)
            for q in state.questions.values():
                if q.device == conn.dhash and not q.public:
                    conn.send(protocol.encode({"type": "mine", "question": {**q.public_view(), "mine": True}}))
        STATS.resumed += 1
        return True

    def leave(self, rt: Runtime, conn: Conn) -> None:
        conn.stop()
        rt.room.remove(conn)

    async def _personal(self, rt: Runtime, conn: Conn) -> dict[str, Any] | None:
        """What only this phone sees in its snapshot (its vote and upvotes)."""
        if conn.role != "audience":
            return None
        state = rt.state
        try:
            vote, upvoted, stances = await self.store.device_state(state.slug, state.round.index, conn.dhash)
        except StoreUnavailable:
            vote, upvoted, stances = None, [], {}
        wait = 0 if self.venues.contains(conn.ip, state.venues) else conn.first_seen + self.min_watch_ms - now_ms()
        return {
            "vote": vote if state.round.index else None,
            "upvoted": upvoted,
            "vote_after_ms": max(0, wait),
            "stance": stances or {},
        }

    def _send_snapshot(self, rt: Runtime, conn: Conn, personal: dict[str, Any] | None) -> None:
        conn.held = False
        s = self.store.settings
        frame = snapshot(
            rt.state,
            conn.role,
            conn.dhash,
            personal,
            conn.banned,
            s.snapshot_questions,
            s.console_queue_max,
            epoch=self.store.epoch,
        )
        if conn.role == "console":  # the other moderators, and the card each is on
            now = now_ms()
            frame["desk"] = [m for m in rt.desk.values() if now - int(m.get("at", 0)) < DESK_TTL_MS]
            frame["moderator"] = conn.holder  # this console's own id in `desk` frames
            notice = self.notice()
            if notice is not None:
                frame["notice"] = notice
        conn.send(protocol.encode(frame))


def snapshot(
    state: ShowState,
    role: str,
    dhash: str = "",
    personal: dict[str, Any] | None = None,
    banned: bool = False,
    page: int = 50,
    queue_max: int = 1000,
    epoch: str = "",
) -> dict[str, Any]:
    """The first frame of a socket: the show as its role may see it, its questions a
    bounded page (`domain.show.snapshot_questions`; older ones by `questions.page`);
    `epoch` is the store's (with `seq`, where a resuming socket says it was)."""
    now = now_ms()
    seq = state.seq if role == "console" else state.pseq
    frame: dict[str, Any] = {
        "type": "snapshot",
        "seq": seq,
        "epoch": epoch,
        "role": role,
        "server_time": now,
    }
    questions, older = dshow.snapshot_questions(state, role, dhash, page, queue_max)
    show = state.view(now, console=role == "console", questions=questions)
    show["questions_older"] = older
    if role == "audience":
        frame["you"] = {"vote": None, "upvoted": [], **(personal or {}), "banned": banned}
    frame["show"] = show
    return frame
