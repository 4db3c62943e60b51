"""The tick: flush coalesced likes to the store, send tallies, sample the timeline.

Every `TICK_MS` each show with sockets (or likes to flush) adds this process's
likes to the store and reads the counters back. Overlays and consoles get a
tally when it changed; phones are split into groups and one group gets its
tally per tick, so each phone hears every `PHONE_TICK_MS` and no tick writes to
all of them. Likes the store could not take go back to the buffer.
"""

import asyncio
import logging
import time
from collections.abc import Callable

from .. import protocol
from ..metrics import STATS
from ..settings import Settings
from ..store import Store, StoreUnavailable
from .replica import Replicas, Runtime

log = logging.getLogger("leitai.node")


class Ticker:
    def __init__(
        self, settings: Settings, store: Store, replicas: Replicas, observe: Callable[[float], None] | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.replicas = replicas
        self.observe = observe or (lambda seconds: None)
        self.phone_groups = replicas.phone_groups
        self.ticks = 0
        self.sample_every = max(1, round(settings.sample_s * 1000 / settings.tick_ms))
        self.sweep_every = max(1, round(1000 / settings.tick_ms))  # once a second

    async def run(self) -> None:
        period = self.settings.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed")
            delay = next_at - loop.time()
            if delay < 0:  # overran: skip the missed ticks rather than bunch them up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def tick(self, final: bool = False) -> None:
        started = time.perf_counter()
        try:
            self.ticks += 1
            phone_group = self.ticks % self.phone_groups
            sample_due = self.ticks % self.sample_every == 0
            ticked = False
            for rt in list(self.replicas.shows.values()):  # (a show whose last socket left is unfollowed)
                if rt.room or rt.likes or final:
                    await self.tick_show(rt, phone_group, sample_due)
                    ticked = True
                elif rt.following:  # guard: unfollow unserved shows
                    await self.replicas.unfollow(rt)
            if not ticked and not final and self.ticks % self.sweep_every == 0:
                await self.watch()
            if self.settings.show_unload_s > 0 and self.ticks % self.sweep_every == 0 and not final:
                for slug in await self.replicas.sweep(self.settings.show_unload_s):
                    log.info("show %s ended and has no sockets: unloaded", slug)
        finally:
            self.observe(time.perf_counter() - started)

    async def watch(self) -> None:
        """No show ticked: still check the state once a second (an outage is the show
        ticks' to report)."""
        try:
            await self.store.watch()  # guard: idle epoch check
        except StoreUnavailable:
            pass

    def put_back(self, rt: Runtime, deltas: dict[str, list[int]]) -> None:
        """Taps a failed tick took go back to the buffer, for a later tick to count."""
        dropped = rt.likes.restore(deltas, self.settings.outage_likes_max)  # guard: likes back
        if dropped:
            STATS.likes_dropped += dropped
            log.error(
                "%d likes on %s dropped: the store is unreachable and %d are kept",
                dropped,
                rt.state.slug,
                self.settings.outage_likes_max,
            )

    async def tick_show(self, rt: Runtime, phone_group: int, sample_due: bool) -> None:
        state = rt.state
        slug = state.slug
        deltas = rt.likes.drain()
        try:
            counters = await self.store.tick(
                slug, deltas, state.round.index, rt.room.count("audience"), rt.room.screens
            )
        except Exception as exc:  # unavailable, or anything else: the taps were not counted
            if deltas and not getattr(exc, "likes_taken", False):
                self.put_back(rt, deltas)
            if isinstance(exc, StoreUnavailable):
                return
            raise
        try:
            if any(phase != "idle" for phase in state.stance_phases.values()):
                counters.stance = await self.store.stance_counts(slug)
        except StoreUnavailable:
            return  # the likes are counted; the tally waits for the next tick
        state.counters = counters
        public = state.tally()
        body = protocol.encode({"type": "tally", **public})
        room = rt.room
        if body != rt.fast_tally:
            rt.fast_tally = body
            room.broadcast(("overlay",), protocol.with_seq(state.pseq, body))
        if room.conns["console"]:  # consoles also see the votes held back
            console = protocol.encode({"type": "tally", **state.console_tally()})
            if console != rt.console_tally:
                rt.console_tally = console
                room.broadcast(("console",), protocol.with_seq(state.seq, console))
        if body != rt.phone_tallies[phone_group]:
            rt.phone_tallies[phone_group] = body
            room.send_group(room.phone_groups[phone_group], protocol.with_seq(state.pseq, body))
        if sample_due and room:
            try:
                await self.store.sample(
                    slug,
                    state.seq,
                    {
                        "likes": counters.likes,
                        "votes": public["votes"],  # a sealed round's split is in no export until its end
                        "ballots": public["ballots"],
                        "viewers": counters.viewers,
                        "round": state.round.index,
                    },
                )
            except StoreUnavailable:
                pass
