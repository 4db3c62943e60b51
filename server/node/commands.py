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
from .replica import UNDO_DEPTH, Runtime, Undo, now_ms

CAS_RETRIES = 8
Decide = Callable[[ShowState], Awaitable[list[dict[str, Any]]]]


class Commands:
    def __init__(self, store: Store, limits: TextLimits) -> None:
        self.store = store
        self.limits = limits

    async def commit_decided(self, rt: Runtime, decide: Decide) -> tuple[ShowState, list[dict[str, Any]]]:
        """Decide and commit until the decision holds; returns the show's (live) state
        and the events committed."""
        async with rt.lock:
            for attempt in range(CAS_RETRIES):
                state = rt.state
                events = await decide(state)
                if not events:
                    return state, events
                names = {name for event in events for name in dshow.fields_of(event)}
                try:
                    await self.store.commit(state.slug, events, {n: dshow.field_value(state, n) for n in names})
                    return state, events
                except Conflict:
                    await asyncio.sleep(0.02 * (attempt + 1))
            raise DomainError("conflict", "the show changed meanwhile; try again")

    async def host(self, rt: Runtime, msg: Message, holder: str = "", by: str = "") -> None:
        """One console action on the show (`holder`: the moderator's session; `by`: their name)."""
        kind = msg.type
        if kind == "votes.release":
            await self.release(rt, msg.reason)
        elif kind.startswith("question."):
            await self.desk(rt, msg, holder, by)
        else:
            state, _ = await self.commit_decided(rt, lambda state: self.decide(state, msg))
            if kind == "device.ban":
                await self.unvote_banned(state, msg.device)

    async def decide(self, state: ShowState, msg: Message) -> list[dict[str, Any]]:
        """The events of a console action that is not about a question."""
        kind, now = msg.type, now_ms()
        if kind == "round.start":
            topic = single_line(msg.topic)
            if len(topic) > self.limits.topic:
                raise ProtocolError("too_large", f"a topic has at most {self.limits.topic} characters", msg.id)
            return dshow.decide_round(state, "start", now, topic, msg.duration_s, sealed=msg.sealed)
        if kind == "round.end":
            votes = await self.store.vote_counts(state.slug, state.round.index)
            return dshow.decide_round(state, "end", now, votes=votes)
        if kind == "show.end":
            counts = await self.store.vote_counts(state.slug, state.round.index) if state.round.open else None
            return dshow.decide_end_show(state, now, counts)
        if kind.startswith("round."):
            return dshow.decide_round(state, kind.split(".", 1)[1], now)
        if kind == "points.set":
            return dshow.decide_points(state, msg.side, msg.points)
        if kind in ("device.ban", "device.unban"):
            return dshow.decide_ban(state, msg.device, kind == "device.ban")
        if kind in ("venue.add", "venue.remove"):
            return dshow.decide_venue(state, msg.network, kind == "venue.add")
        if kind in ("stance.open", "stance.close"):
            return dshow.decide_stance_phase(state, msg.phase, kind.split(".", 1)[1])
        if kind == "floor.set":
            return dshow.decide_floor(state, msg.holder, now)
        if kind == "overlay.rekey":
            return dshow.decide_overlay_key(state, secrets.token_urlsafe(12))
        raise ProtocolError("invalid", "unknown action", msg.id)

    async def desk(self, rt: Runtime, msg: Message, holder: str, by: str) -> None:
        """A question action (moderate, merge, split), kept so its moderator can undo it."""
        kind = msg.type
        if kind == "question.undo":
            await self.undo(rt, holder)
            return

        seen: list[Undo] = []  # what the decision was made on (the state is live; copy it now)

        async def decide(state: ShowState) -> list[dict[str, Any]]:
            if kind == "question.edit":
                events = dshow.decide_question_edit(state, msg.question, self.on_air_text(msg), by)
            elif kind == "question.merge":
                events = dshow.decide_cluster(state, msg.question, msg.into, by)
            elif kind == "question.split":
                events = dshow.decide_cluster(state, msg.question, None, by)
            else:
                events = dshow.decide_moderation(state, msg.question, kind.split(".", 1)[1], by)
            after = [e["question"] for e in events if e["type"] == "question"]
            seen[:] = [Undo([state.questions[q["id"]].record() for q in after], after, state.featured)]
            return events

        _, events = await self.commit_decided(rt, decide)
        if events:
            stack = rt.undo.setdefault(holder, [])
            stack.append(seen[0])
            del stack[:-UNDO_DEPTH]

    async def undo(self, rt: Runtime, holder: str) -> None:
        """Undo this moderator's last question action, if nothing changed it since."""
        stack = rt.undo.get(holder)  # guard: own undo
        if not stack:
            raise DomainError("conflict", "nothing to undo")
        last = stack[-1]

        async def decide(state: ShowState) -> list[dict[str, Any]]:
            return dshow.decide_restore(state, last.before, last.after, last.featured)

        await self.commit_decided(rt, decide)
        stack.pop()

    async def unvote_banned(self, state: ShowState, device: str) -> None:
        """A banned device's ballots in what is still open go too."""
        if state.round.open:
            await self.store.unvote(state.slug, state.round.index, device)
        for phase, status in state.stance_phases.items():
            if status == "open":
                await self.store.unvote(state.slug, phase, device)

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
