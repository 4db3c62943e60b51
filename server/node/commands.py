"""Host and producer commands: decide on the replica, commit with compare-and-set.

A decision reads the replica; the commit names the stored fields the events
write and the values the decision saw. If another process moved one of them
first, the store refuses the commit (Conflict); we wait for the replica to
catch up through the event stream and decide again.
"""

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from ..domain import DomainError, TextLimits
from ..domain import show as dshow
from ..domain.show import ShowState
from ..domain.text import normalise, single_line
from ..protocol import Message, ProtocolError
from ..store import Conflict, Store
from .replica import Runtime, now_ms

CAS_RETRIES = 8
Decide = Callable[[ShowState], Awaitable[list[dict[str, Any]]]]


class Commands:
    def __init__(self, store: Store, limits: TextLimits) -> None:
        self.store = store
        self.limits = limits

    async def commit_decided(self, rt: Runtime, decide: Decide) -> ShowState:
        """Decide and commit until the decision holds; returns the state it was made on."""
        async with rt.lock:
            for attempt in range(CAS_RETRIES):
                state = rt.state
                events = await decide(state)
                if not events:
                    return state
                names = {name for event in events for name in dshow.fields_of(event)}
                try:
                    await self.store.commit(state.slug, events, {n: dshow.field_value(state, n) for n in names})
                    return state
                except Conflict:
                    await asyncio.sleep(0.02 * (attempt + 1))
            raise DomainError("conflict", "the show changed meanwhile; try again")

    async def host(self, rt: Runtime, msg: Message) -> None:
        """One console action on the show."""
        slug = rt.state.slug
        kind = msg.type
        if kind == "votes.release":
            await self.release(rt, msg.reason)
            return

        async def decide(state: ShowState) -> list[dict[str, Any]]:
            if kind == "question.edit":
                return dshow.decide_question_edit(state, msg.question, self.on_air_text(msg))
            if kind.startswith("question."):
                return dshow.decide_moderation(state, msg.question, kind.split(".", 1)[1])
            if kind == "round.start":
                topic = single_line(msg.topic)
                if len(topic) > self.limits.topic:
                    raise ProtocolError("too_large", f"a topic has at most {self.limits.topic} characters", msg.id)
                return dshow.decide_round(state, "start", now_ms(), topic, msg.duration_s)
            if kind == "round.end":
                votes = await self.store.vote_counts(slug, state.round.index)
                return dshow.decide_round(state, "end", now_ms(), votes=votes)
            if kind == "show.end":
                counts = await self.store.vote_counts(slug, state.round.index) if state.round.open else None
                return dshow.decide_end_show(state, now_ms(), counts)
            if kind.startswith("round."):
                return dshow.decide_round(state, kind.split(".", 1)[1], now_ms())
            if kind == "points.set":
                return dshow.decide_points(state, msg.side, msg.points)
            if kind in ("device.ban", "device.unban"):
                return dshow.decide_ban(state, msg.device, kind == "device.ban")
            if kind in ("venue.add", "venue.remove"):
                return dshow.decide_venue(state, msg.network, kind == "venue.add")
            if kind == "overlay.rekey":
                return dshow.decide_overlay_key(state, secrets.token_urlsafe(12))
            raise ProtocolError("invalid", "unknown action", msg.id)

        state = await self.commit_decided(rt, decide)
        if kind == "device.ban" and state.round.open:
            await self.store.unvote(slug, state.round.index, msg.device)

    def on_air_text(self, msg: Message) -> str:
        """The host's wording of a question, normalised and within the question limit."""
        text = normalise(msg.text)
        if len(text) > self.limits.question:
            raise ProtocolError("too_large", f"a question has at most {self.limits.question} characters", msg.id)
        return text

    async def release(self, rt: Runtime, reason: str) -> int:
        """Count the open round's held votes (those held for `reason`, or all)."""
        state = rt.state
        if not state.round.open:
            raise DomainError("conflict", "held votes can be released only while their round is open")
        return await self.store.release_votes(state.slug, state.round.index, reason)

    async def edit_show(self, rt: Runtime, changes: dict[str, Any]) -> None:
        async def decide(state: ShowState) -> list[dict[str, Any]]:
            return dshow.decide_edit(state, changes, self.limits)

        await self.commit_decided(rt, decide)

    async def rehearsal_reset(self, rt: Runtime) -> None:
        """Zero an episode's counters (after the producer confirmed it)."""

        async def decide(state: ShowState) -> list[dict[str, Any]]:
            return dshow.decide_reset(state, now_ms())

        await self.commit_decided(rt, decide)
        await self.store.reset_counters(rt.state.slug)
