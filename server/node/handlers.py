"""Client messages: one valid message in, one typed `Reply` (or None) out.

Each message type has one method; the dispatch table maps the type to it.
Nothing here makes bytes: the socket edge encodes the reply once. Error
replies are counted here, by code, where they are made.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..domain import DomainError
from ..domain import show as dshow
from ..domain.questions import PENDING, Question
from ..domain.text import normalise, single_line
from ..hub import Conn
from ..metrics import STATS
from ..protocol import Message, ProtocolError, Reply
from ..settings import Settings
from ..store import Store, StoreUnavailable
from .commands import Commands
from .limits import Budget
from .replica import Runtime, now_ms

Handler = Callable[[Runtime, Conn, Message, float], Awaitable[Reply | None]]


class Handlers:
    def __init__(
        self, settings: Settings, store: Store, commands: Commands, flagged: Callable[[str], bool] | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands
        self.flagged = flagged or (lambda text: False)
        s = settings
        self.budgets = {
            "like": Budget(s.like_rate, s.like_burst),
            "vote": Budget(s.vote_rate, s.vote_burst),
            "upvote": Budget(s.upvote_rate, s.upvote_burst),
            "ask": Budget(1.0 / s.question_interval_s, 1.0, "one question every few seconds; try again shortly"),
            "console": Budget(s.console_rate, s.console_burst),
        }
        audience: dict[str, Handler] = {
            "hello": self.hello,
            "like": self.like,
            "vote": self.vote,
            "ask": self.ask,
            "upvote": self.upvote,
        }
        self.table = audience  # console types fall through to `host`

    async def handle(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        """Carry out one valid message; return its reply, or None when none is due.

        A message whose `id` this device (or host) already sent is not applied
        again: it gets the first one's reply. Transient errors are not
        remembered, so a retry with the same id is tried afresh.
        """
        if msg.id is None or msg.type == "hello":
            return await self._reply(rt, conn, msg)
        key = (conn.holder, msg.id)
        cached = await rt.replies.recall(key)
        if cached is not None:
            return cached
        rt.replies.claim(key)
        reply: Reply | None = None
        try:
            reply = await self._reply(rt, conn, msg)
        finally:
            rt.replies.settle(key, reply or Reply(msg.id, "unavailable", "try again"))
        return reply

    async def _reply(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        try:
            handler = self.table.get(msg.type, self.host)
            return await handler(rt, conn, msg, time.monotonic())
        except ProtocolError as exc:
            error = exc.reply()
        except DomainError as exc:
            error = Reply(msg.id, exc.code, exc.message)
        except StoreUnavailable:
            error = Reply(msg.id, "unavailable", "the show is briefly unavailable; try again")
        STATS.errors[error.code or ""] += 1
        return error

    def _limit(self, rt: Runtime, conn: Conn, kind: str, msg: Message, now: float) -> None:
        rt.limits.check(conn.holder, kind, self.budgets[kind], msg.id, now)

    # -- audience ------------------------------------------------------------------------

    async def hello(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        return Reply.ack(msg.id) if msg.id else None

    async def like(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        self._limit(rt, conn, "like", msg, now)
        if not conn.banned:  # guard: ban likes
            rt.likes.add(msg.side, msg.count)
            STATS.likes += msg.count
        return Reply.ack(msg.id) if msg.id else None

    def _not_banned(self, conn: Conn, msg: Message) -> None:
        if conn.banned:
            raise ProtocolError("forbidden", "this device can no longer take part", msg.id)

    async def vote(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        self._not_banned(conn, msg)
        self._limit(rt, conn, "vote", msg, now)
        rnd = rt.state.round
        if not rnd.open:
            raise DomainError("conflict", "no round is open for voting")
        await self.store.vote(rt.state.slug, rnd.index, conn.dhash, msg.side)
        return Reply.ack(msg.id, side=msg.side) if msg.id else None

    async def ask(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        self._not_banned(conn, msg)
        limits = self.settings.text_limits
        text = normalise(msg.text)  # guard: normalise
        name = single_line(msg.name)
        if not text:
            raise ProtocolError("invalid", "the question is empty", msg.id)
        if len(text) > limits.question:
            raise ProtocolError("too_large", f"a question has at most {limits.question} characters", msg.id)
        if len(name) > limits.name:
            raise ProtocolError("too_large", f"a name has at most {limits.name} characters", msg.id)
        self._limit(rt, conn, "ask", msg, now)
        flagged = self.flagged(text) or self.flagged(name)  # guard: word filter
        if flagged and self.settings.reject_flagged:
            raise ProtocolError("invalid", "this question cannot be accepted", msg.id)
        slug = rt.state.slug
        qid = await self.store.next_question_id(slug)
        q = Question(qid, text, name, PENDING, now_ms(), conn.dhash, 0, flagged)
        await self.store.commit(slug, [dshow.private({"type": "question", "question": q.record()})])
        return Reply.ack(msg.id, question=qid) if msg.id else None

    async def upvote(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        self._not_banned(conn, msg)
        self._limit(rt, conn, "upvote", msg, now)
        q = dshow.decide_upvote(rt.state, msg.question)
        count = await self.store.upvote(rt.state.slug, q.id, conn.dhash)
        if count is None:
            raise DomainError("conflict", "already upvoted")
        await self.store.commit(rt.state.slug, [{"type": "question", "question": replace(q, upvotes=count).record()}])
        return Reply.ack(msg.id) if msg.id else None

    # -- console -------------------------------------------------------------------------

    async def host(self, rt: Runtime, conn: Conn, msg: Message, now: float) -> Reply | None:
        self._limit(rt, conn, "console", msg, now)
        if msg.type == "overlay.reload":
            await self.store.signal(rt.state.slug, {"type": "reload"})
        else:
            await self.commands.host(rt, msg)
        return Reply.ack(msg.id) if msg.id else None
