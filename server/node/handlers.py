"""Client messages: one valid message in, one typed `Reply` (or None) out.

Each message type has one method; the dispatch table maps the type to it.
Nothing here makes bytes, except that remembered replies are kept as the bytes
they were sent as (the store keeps them, so a resend to any process gets the
first reply). Error replies are counted here, by code, where they are made.
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..domain import DomainError
from ..domain import show as dshow
from ..domain.integrity import Voter
from ..domain.questions import PENDING, Question
from ..domain.text import normalise, single_line
from ..hub import Conn
from ..metrics import STATS
from ..protocol import Message, ProtocolError, Reply
from ..settings import Settings
from ..store import PENDING as STILL_RUNNING
from ..store import StateLost, Store, StoreUnavailable
from .commands import Commands
from .limits import Budget, check
from .replica import Runtime, now_ms
from .venues import Venues

MODERATOR_NAME_MAX = 20
Handler = Callable[[Runtime, Conn, Message], Awaitable[Reply | None]]
UNREMEMBERED = frozenset(("hello", "questions.page"))  # changes nothing: answered afresh, never cached


def unavailable(msg_id: str | None, exc: StoreUnavailable) -> Reply:
    if isinstance(exc, StateLost):  # not brief: say so
        return Reply(msg_id, "unavailable", str(exc))
    return Reply(msg_id, "unavailable", "the show is briefly unavailable; try again")


class Handlers:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        commands: Commands,
        venues: Venues,
        flagged: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands
        self.venues = venues
        self.flagged = flagged or (lambda text: False)
        s = settings
        self.budgets = {
            "vote": Budget(s.vote_rate, s.vote_burst),
            "upvote": Budget(s.upvote_rate, s.upvote_burst),
            "ask": Budget(1.0 / s.question_interval_s, 1.0, "one question every few seconds; try again shortly"),
            "console": Budget(s.console_rate, s.console_burst),
            "page": Budget(s.page_rate, s.page_burst),
        }
        self.table: dict[str, Handler] = {
            "hello": self.hello,
            "like": self.like,
            "vote": self.vote,
            "ask": self.ask,
            "upvote": self.upvote,
            "stance": self.stance,
            "questions.page": self.page,
        }  # console types fall through to `host`

    async def handle(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        """Carry out one valid message; return its reply, or None when none is due.

        A message whose `id` this device (or host) already sent is not applied
        again: it gets the first one's reply, from whichever process gave it.
        Transient errors are not remembered, so a retry with the same id runs afresh.
        """
        if msg.id is None or msg.type in UNREMEMBERED:
            return await self._reply(rt, conn, msg)
        replies = self.store.replies(rt.state.slug)
        key = (conn.holder, msg.id)
        try:
            seen = await replies.begin(key)
        except StoreUnavailable as exc:
            return unavailable(msg.id, exc)
        if seen == STILL_RUNNING:
            return Reply(msg.id, "unavailable", "still being handled; try again")
        if seen is not None:
            return Reply.remembered(seen)
        reply: Reply | None = None
        try:
            reply = await self._reply(rt, conn, msg)
        finally:
            keep = reply.encode() if reply is not None and not reply.transient else None
            try:
                await replies.finish(key, keep)
            except StoreUnavailable:
                pass  # not remembered: a resend is tried afresh
        return reply

    async def _reply(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        try:
            return await self.table.get(msg.type, self.host)(rt, conn, msg)
        except ProtocolError as exc:
            error = exc.reply()
        except DomainError as exc:
            error = Reply(msg.id, exc.code, exc.message)
        except StoreUnavailable as exc:
            error = unavailable(msg.id, exc)
        STATS.errors[error.code or ""] += 1
        return error

    async def _limit(self, rt: Runtime, conn: Conn, kind: str, msg: Message) -> None:
        await check(self.store, rt.state.slug, conn.holder, kind, self.budgets[kind], msg.id)

    @staticmethod
    def _taking_part(rt: Runtime, conn: Conn, msg: Message) -> None:
        if rt.state.status == "ended":  # guard: ended show
            raise ProtocolError("ended", "the show has ended", msg.id)
        if conn.banned:
            raise ProtocolError("forbidden", "this device can no longer take part", msg.id)

    # -- audience ------------------------------------------------------------------------

    async def hello(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        if conn.role == "console" and msg.name:  # a moderator says who they are
            conn.name = single_line(msg.name)[:MODERATOR_NAME_MAX]
        return Reply.ack(msg.id) if msg.id else None

    async def like(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        # Taps past the device's cap are counted by nobody, quietly (the store caps them
        # per device at the tick); a banned device's and an ended show's are not kept.
        if rt.state.status == "ended":  # guard: ended likes
            return Reply.ack(msg.id) if msg.id else None
        if not conn.banned:  # guard: ban likes
            rt.likes.add(conn.dhash, msg.side, msg.count)
            STATS.likes += msg.count
        return Reply.ack(msg.id) if msg.id else None

    async def vote(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        self._taking_part(rt, conn, msg)
        await self._limit(rt, conn, "vote", msg)
        state = rt.state
        if not state.round.open:
            raise DomainError("conflict", "no round is open for voting")
        return await self._ballot(rt, conn, msg, state.round.index)

    async def stance(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        """A stance before or after the debate: one per device per phase, changeable while open."""
        self._taking_part(rt, conn, msg)
        await self._limit(rt, conn, "vote", msg)
        if rt.state.stance_phases.get(msg.phase) != "open":  # guard: stance phase open
            raise DomainError("conflict", f"the {msg.phase} stance is not open")
        return await self._ballot(rt, conn, msg, msg.phase)

    async def _ballot(self, rt: Runtime, conn: Conn, msg: Message, box: int | str) -> Reply | None:
        """A ballot in a box (a round, or a stance phase), counted or held (domain.integrity)."""
        state = rt.state
        venue = self.venues.contains(conn.ip, state.venues)
        wait = conn.first_seen + int(self.settings.vote_min_watch_s * 1000) - now_ms()
        if wait > 0 and not venue:  # guard: watch before voting
            raise ProtocolError("conflict", "watch a little longer before voting", msg.id, retry_ms=wait)
        voter = Voter(self.venues.network(conn.ip), venue, conn.first_seen)
        ballot = await self.store.vote(state.slug, box, conn.dhash, msg.side, voter)
        return Reply.ack(msg.id, side=msg.side, counted=ballot.status == "counted") if msg.id else None

    async def ask(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        self._taking_part(rt, conn, msg)
        limits = self.settings.text_limits
        text = normalise(msg.text)  # guard: normalise
        name = single_line(msg.name)
        if not text:
            raise ProtocolError("invalid", "the question is empty", msg.id)
        if len(text) > limits.question:
            raise ProtocolError("too_large", f"a question has at most {limits.question} characters", msg.id)
        if len(name) > limits.name:
            raise ProtocolError("too_large", f"a name has at most {limits.name} characters", msg.id)
        await self._limit(rt, conn, "ask", msg)
        flagged = self.flagged(text) or self.flagged(name)  # guard: word filter
        if flagged and self.settings.reject_flagged:
            raise ProtocolError("invalid", "this question cannot be accepted", msg.id)
        slug = rt.state.slug
        qid = await self.store.next_question_id(slug)
        cluster = rt.clusters.place(rt.state, text)  # "" : it leads its own
        q = Question(qid, text, name, PENDING, now_ms(), conn.dhash, 0, flagged, msg.side or None, cluster)
        await self.store.commit(slug, [dshow.private({"type": "question", "question": q.record()})])
        return Reply.ack(msg.id, question=qid) if msg.id else None

    async def upvote(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        self._taking_part(rt, conn, msg)
        await self._limit(rt, conn, "upvote", msg)
        q = dshow.decide_upvote(rt.state, msg.question)
        if q.device == conn.dhash:  # guard: own question
            raise DomainError("conflict", "you cannot upvote your own question")
        count = await self.store.upvote(rt.state.slug, q.id, conn.dhash)
        if count is None:
            raise DomainError("conflict", "already upvoted")
        question = {"type": "question", "question": replace(q, upvotes=count).record()}
        await self.store.commit(rt.state.slug, [question])
        return Reply.ack(msg.id) if msg.id else None

    async def page(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        """Older questions than a snapshot's (or a page's) `questions_older`: public ones for
        phones, answered and rejected ones for consoles; `older` is the next cursor (or null)."""
        await self._limit(rt, conn, "page", msg)
        console = conn.role == "console"
        n = self.settings.snapshot_questions
        page, older = dshow.older_page(rt.state, console, msg.before or None, n)
        views = [q.console_view() if console else q.public_view() for q in page]
        return Reply.ack(msg.id, questions=views, older=older)

    # -- console -------------------------------------------------------------------------

    async def host(self, rt: Runtime, conn: Conn, msg: Message) -> Reply | None:
        await self._limit(rt, conn, "console", msg)
        if msg.type == "overlay.reload":
            await self.store.signal(rt.state.slug, {"type": "reload"})
        elif msg.type == "desk.focus":
            await self.focus(rt, conn, msg.question or None)
        elif msg.type in ("venue.add", "venue.remove") and msg.network == "here":
            await self.commands.host(rt, replace(msg, network=self.venues.network(conn.ip)))
        else:
            await self.commands.host(rt, msg, conn.holder, self.moderator(conn))
        return Reply.ack(msg.id) if msg.id else None

    @staticmethod
    def moderator(conn: Conn) -> str:
        return conn.name or conn.holder[-4:]

    async def focus(self, rt: Runtime, conn: Conn, question: str | None, left: bool = False) -> None:
        """Tell every console which card this moderator is on (or that they left)."""
        moderator = {"id": conn.holder, "name": self.moderator(conn), "question": question, "at": now_ms()}
        if left:
            moderator["left"] = True
        await self.store.signal(rt.state.slug, {"type": "desk", "moderator": moderator})
