"""Prototype (bench experiment only): phones' tallies staggered over the ticks.

Instead of writing the tally to every phone on every 5th tick, each tick writes
it to one fifth of the phones, so each phone still gets one every PHONE_TICK_MS
but the loop never blocks on a 10,000-socket write burst.
"""
from server import node as N, protocol
from server.hub import ws_text_frame
from server.store import StoreUnavailable


async def _tick_show(self, rt, phones_due, sample_due):
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
        rt.room.broadcast(N.FAST_ROLES, protocol.with_seq(state.seq, body))
    k = max(1, round(self.settings.phone_tick_ms / self.settings.tick_ms))
    g = self._ticks % k
    last = rt.__dict__.setdefault("_group_tally", [b""] * k)
    if body != last[g]:
        last[g] = body
        payload = protocol.with_seq(state.seq, body)
        wire = ws_text_frame(payload)
        for conn in rt.room.conns["audience"]:
            if (id(conn) >> 4) % k == g:
                conn.send(payload, wire)
    if sample_due and rt.room:
        try:
            await self.store.sample(slug, state.seq, {
                "likes": counters.likes, "votes": counters.votes, "viewers": counters.viewers,
                "round": state.round.index})
        except StoreUnavailable:
            pass


N.Node._tick_show = _tick_show
