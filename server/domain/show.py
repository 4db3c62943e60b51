"""The whole state of one show, folded from events, and the views each role sees.

An *event* is the body of a discrete frame without its `seq`:

    {"type": "question", "question": {...record...}}
    {"type": "round", "round": {...record...}, "rounds": [...], "rounds_won": {...}}
    {"type": "show", "show": {...changed top-level fields...}}
    {"type": "points", "points": {"a": 3, "b": 1}}

An event that phones and overlays may not see (a new pending question, a
pending one rejected, a change to the ban list) carries `"public": False`: it
takes the next `seq` but not the next public sequence number (`pseq`), which
is what phones and overlays count. Consoles count `seq`.

Every event also names the stored *fields* it writes (`fields_of`), so both
stores persist state as a flat map of field -> JSON and a host action can be
checked against the fields it read (compare-and-set).
"""

import re
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from . import DEFAULT_COLORS, DEFAULT_SIDE_NAMES, LIMITS, SIDES, DomainError, TextLimits, verdict
from . import questions as qmod
from . import rounds as rmod
from .integrity import VoteCounts, parse_networks
from .questions import Question
from .rounds import Round

SLUG = re.compile(r"^[a-z0-9-]{1,40}$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
GUEST_ID = re.compile(r"^g[1-9][0-9]{0,8}$")
SHOW_STATUSES = ("draft", "live", "ended")
SHOW_LANGS = ("zh-CN", "en")  # the show's language: its overlay's (server/i18n has these catalogs)
META_FIELDS = (
    "title",
    "status",
    "sides",
    "plan",
    "date",
    "created",
    "featured",
    "rehearsal",
    "banned",
    "venues",
    "overlay_key",
    "seal_final",
    "stance_phases",
    "floor",
    "lang",
)
CONSOLE_ONLY = ("banned", "venues", "overlay_key")  # fields phones and overlays never see
MAX_POINTS = 9999


def dumps(value: Any) -> bytes:
    """Stored form of a field. A compact copy: orjson's own result sits in a 4 KiB
    allocation, and stored fields live as long as the show."""
    return bytes(bytearray(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)))


@dataclass(slots=True)
class Counters:
    """The coalesced counters: read from the store once per tick."""

    likes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    votes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    viewers: int = 0
    peak_viewers: int = 0
    unique_viewers: int = 0
    overlays: int = 0  # overlay sockets with the show's key, all processes
    held: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})  # votes held back
    held_reasons: dict[str, int] = field(default_factory=dict)
    stance: verdict.StanceCounts = field(default_factory=verdict.StanceCounts)


@dataclass(slots=True)
class QuestionCounts:
    """Moderation in the open: received, on air (ever), answered (and answered per side)."""

    received: int = 0
    on_air: int = 0
    answered: int = 0
    sides: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0, "both": 0})

    def count(self, q: Question | None, sign: int) -> None:
        if q is None:
            return
        self.received += sign
        self.on_air += sign * q.aired
        if q.status == qmod.ANSWERED:
            self.answered += sign
            self.sides[q.side or "both"] += sign

    def view(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "on_air": self.on_air,
            "answered": self.answered,
            "answered_by_side": dict(self.sides),
        }


@dataclass(slots=True)
class ShowState:
    slug: str
    title: str = ""
    status: str = "live"
    sides: dict[str, dict[str, str]] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)
    date: str = ""
    created: int = 0
    rehearsal: int = 0
    featured: str | None = None
    banned: list[str] = field(default_factory=list)  # device hashes
    venues: list[str] = field(default_factory=list)  # networks declared as the venue's (CIDR)
    overlay_key: str = ""  # overlays whose URL carries it count as the studio's screens
    seal_final: bool = True  # the final planned round is sealed (domain.verdict)
    stance_phases: dict[str, str] = field(default_factory=verdict.default_phases)
    floor: dict[str, Any] = field(default_factory=verdict.empty_floor)  # the speaking clock
    lang: str = SHOW_LANGS[0]
    round: Round = field(default_factory=Round)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    rounds_won: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    points: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    questions: dict[str, Question] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    qcounts: QuestionCounts = field(default_factory=lambda: QuestionCounts())
    seq: int = 0  # every event (consoles)
    pseq: int = 0  # events phones and overlays see

    # -- folding events --------------------------------------------------

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "question":
            q = Question.from_record(event["question"])
            old = self.questions.get(q.id)
            if old is not None and old.upvotes > q.upvotes:
                q = replace(q, upvotes=old.upvotes)  # upvotes only grow
            self.qcounts.count(old, -1)
            self.qcounts.count(q, 1)
            qs = self.questions
            last = next(reversed(qs.values()), None) if old is None and qs else None
            qs[q.id] = q
            if last is not None and question_key(q) < question_key(last):  # asked a moment earlier elsewhere
                self.questions = dict(sorted(qs.items(), key=lambda kv: question_key(kv[1])))
        elif kind == "round":
            self.round = Round.from_record(event["round"])
            if "rounds" in event:
                self.rounds = event["rounds"]
            if "rounds_won" in event:
                self.rounds_won = event["rounds_won"]
        elif kind == "show":
            for key, value in event["show"].items():
                setattr(self, key, value)
        elif kind == "points":
            self.points = event["points"]

    # -- stored fields ---------------------------------------------------

    def fields(self) -> dict[str, bytes]:
        out = {key: dumps(getattr(self, key)) for key in META_FIELDS}
        out["round"] = dumps(self.round.record())
        out["rounds"] = dumps(self.rounds)
        out["rounds_won"] = dumps(self.rounds_won)
        out["points"] = dumps(self.points)
        for q in self.questions.values():
            out["q:" + q.id] = question_field(q)
        return out

    @classmethod
    def from_fields(cls, slug: str, fields: dict[str, bytes], upvotes: dict[str, int]) -> "ShowState":
        state = cls(slug)
        for key, raw in fields.items():
            value = orjson.loads(raw)
            if key.startswith("q:"):
                q = Question.from_record(value)
                state.questions[q.id] = replace(q, upvotes=upvotes.get(q.id, 0))
            elif key == "round":
                state.round = Round.from_record(value)
            elif key in META_FIELDS or key in ("rounds", "rounds_won", "points"):
                setattr(state, key, value)
        state.questions = dict(sorted(state.questions.items(), key=lambda kv: question_key(kv[1])))
        for q in state.questions.values():
            state.qcounts.count(q, 1)
        return state

    # -- views -----------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """A sealed round is running: its vote split is the console's alone."""
        return self.round.sealed and self.round.open

    def tally(self) -> dict[str, Any]:
        """The tally as phones and overlays see it (a sealed round: ballots, no split)."""
        c = self.counters
        votes, ballots = verdict.public_votes(c.votes, self.sealed)  # guard: sealed tally
        out = {
            "likes": c.likes,
            "votes": votes,
            "ballots": ballots,
            "points": self.points,
            "viewers": c.viewers,
            "rounds_won": self.rounds_won,
            "peak_viewers": c.peak_viewers,
            "unique_viewers": c.unique_viewers,
            "overlays": c.overlays,
            "question_counts": self.qcounts.view(),
        }
        if any(state != "idle" for state in self.stance_phases.values()):
            out["stance"] = c.stance.view(self.stance_phases)
        return out

    def console_tally(self) -> dict[str, Any]:
        """The tally as consoles see it: the vote split always, and the votes held back."""
        c = self.counters
        return {**self.tally(), "votes": c.votes, "held": c.held, "held_reasons": c.held_reasons}

    def view(self, now: int, console: bool, questions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The snapshot's `show`; `questions` as given (a bounded page: `snapshot_questions`),
        or else every question the role may see."""
        if questions is not None:
            qs = questions
        elif console:
            qs = [q.console_view() for q in reversed(self.questions.values())]
        else:
            qs = [q.public_view() for q in self.questions.values() if q.public]
        return {
            "slug": self.slug,
            "title": self.title,
            "status": self.status,
            "sides": self.sides,
            "plan": self.plan,
            "date": self.date,
            "lang": self.lang,
            "rehearsal": self.rehearsal,
            "round": self.round.view(now),
            "rounds": self.rounds,
            "featured": self.featured,
            "seal_final": self.seal_final,
            "question_counts": self.qcounts.view(),
            "stance": self.counters.stance.view(self.stance_phases),
            "floor": verdict.floor_view(self.floor, now),
            "tally": self.console_tally() if console else self.tally(),
            **({key: getattr(self, key) for key in CONSOLE_ONLY} if console else {}),
            "questions": qs,
        }


# -- bounded pages of questions (docs/protocol.md, "Questions in pages") ----------

QUEUE = frozenset((qmod.PENDING, qmod.APPROVED, qmod.FEATURED))  # what a moderator acts on


def question_key(q: Question) -> tuple[int, str]:
    """The order of questions, oldest first: when asked, then id. `state.questions` keeps it."""
    return (q.created, q.id)


def older_page(state: ShowState, console: bool, before: str | None, n: int) -> tuple[list[Question], str | None]:
    """The newest `n` questions older than the question `before` (None: the newest), newest
    first: public ones for phones and overlays, answered and rejected ones for consoles (their
    queue comes whole in the snapshot). The second value is the cursor for the page after
    (the last one's id), or None when there is none. An unknown `before` is `not_found`."""
    cutoff: tuple[int, str] | None = None
    if before is not None:
        ref = state.questions.get(before)
        if ref is None:
            raise DomainError("not_found", f"no question {before}")
        cutoff = question_key(ref)
    out: list[Question] = []
    for q in reversed(state.questions.values()):
        if cutoff is not None and question_key(q) >= cutoff:
            continue
        if (q.status not in QUEUE) if console else q.public:
            if len(out) == n:  # guard: snapshot bound
                return out, out[-1].id
            out.append(q)
    return out, None


def snapshot_questions(
    state: ShowState, role: str, dhash: str, n: int, queue_max: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The questions of a socket's snapshot and the cursor for older ones (or None).

    Phones and overlays: the featured question, the newest `n` public ones, and (phones)
    the newest `n` of their own. Consoles: the queue (pending, approved, featured; the
    newest `queue_max`) and the newest `n` answered or rejected ones."""
    if role == "console":
        queue: list[Question] = []
        for q in reversed(state.questions.values()):
            if q.status in QUEUE and len(queue) < queue_max:
                queue.append(q)
        done, older = older_page(state, True, None, n)
        picked = {q.id for q in queue} | {q.id for q in done}
        return [q.console_view() for q in reversed(state.questions.values()) if q.id in picked], older
    page, older = older_page(state, False, None, n)
    views = {q.id: q.public_view() for q in page}
    on_air = state.questions.get(state.featured) if state.featured else None
    if on_air is not None and on_air.public:
        views.setdefault(on_air.id, on_air.public_view())
    if role == "audience" and dhash:
        own = 0
        for q in reversed(state.questions.values()):
            if q.device == dhash:
                views[q.id] = {**q.public_view(), "mine": True} if not q.public else views.get(q.id, q.public_view())
                own += 1
                if own == n:
                    break
    order = {qid: i for i, qid in enumerate(state.questions)}
    return sorted(views.values(), key=lambda v: order[v["id"]]), older


def question_field(q: Question) -> bytes:
    record = q.record()
    del record["upvotes"]  # upvotes are a counter of their own
    return dumps(record)


def fields_of(event: dict[str, Any]) -> dict[str, bytes]:
    """The stored fields an event writes."""
    kind = event["type"]
    if kind == "question":
        return {"q:" + event["question"]["id"]: question_field(Question.from_record(event["question"]))}
    if kind == "round":
        out = {"round": dumps(event["round"])}
        for key in ("rounds", "rounds_won"):
            if key in event:
                out[key] = dumps(event[key])
        return out
    if kind == "show":
        return {key: dumps(value) for key, value in event["show"].items()}
    if kind == "points":
        return {"points": dumps(event["points"])}
    raise ValueError(kind)


def is_public(event: dict[str, Any]) -> bool:
    return bool(event.get("public", True))


def private(event: dict[str, Any]) -> dict[str, Any]:
    """Mark an event as one phones and overlays do not see."""
    event["public"] = False
    return event


def event_views(event: dict[str, Any], now: int) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """(console, public, mine) bodies of an event's frame. `public` is None when
    phones and overlays do not see the event; `mine` is the asker's own view of a
    question they may not otherwise see (sent without a seq)."""
    kind = event["type"]
    body = {k: v for k, v in event.items() if k != "public"}
    if kind == "question":
        q = Question.from_record(event["question"])
        public = None
        if is_public(event):
            public = {"type": "question", "question": q.public_view() if q.public else q.redacted_view()}
        mine = None if q.public else {"type": "mine", "question": {**q.public_view(), "mine": True}}
        return {"type": "question", "question": q.console_view()}, public, mine
    if kind == "round":
        body["round"] = Round.from_record(event["round"]).view(now)
        return body, body, None
    if kind == "show" and "floor" in event["show"]:  # the clock as of now, not its stored form
        body = {**body, "show": {**event["show"], "floor": verdict.floor_view(event["show"]["floor"], now)}}
    if kind == "show" and any(key in event["show"] for key in CONSOLE_ONLY):  # the console's business
        rest = {k: v for k, v in event["show"].items() if k not in CONSOLE_ONLY}
        return body, {"type": "show", "show": rest} if is_public(event) and rest else None, None
    return body, body if is_public(event) else None, None


# -- deciding commands ---------------------------------------------------------


DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EPISODE_FIELDS = ("slug", "title", "date", "status", "lang", "sides", "plan")


class Problem(Protocol):
    def __call__(self, at: str, key: str, message: str, **params: Any) -> None: ...


def check_episode(data: dict[str, Any], limits: TextLimits = LIMITS) -> tuple[dict[str, Any], list[DomainError]]:
    """Validate the episode fields present in `data` (slug, title, date, status,
    sides, plan): their clean values, and every problem found (empty if none).
    The producer form shows all the problems; the API and the socket the first."""
    problems: list[DomainError] = []
    clean: dict[str, Any] = {}

    def problem(at: str, key: str, message: str, **params: Any) -> None:
        problems.append(DomainError("invalid", message, at, key, params))

    if "slug" in data:
        slug = data["slug"]
        if not isinstance(slug, str) or not SLUG.match(slug):
            problem("slug", "slug", "slug must match [a-z0-9-]{1,40}")
        clean["slug"] = slug
    if "title" in data:
        title = data["title"]
        if not isinstance(title, str) or not 1 <= len(title) <= limits.title:
            problem("title", "title", f"title must be 1..{limits.title} characters", n=limits.title)
        clean["title"] = title
    if "date" in data:
        date = data["date"]
        if not isinstance(date, str) or (date and not DATE.match(date)):
            problem("date", "date", "date must be YYYY-MM-DD")
        clean["date"] = date
    if "status" in data:
        if data["status"] not in SHOW_STATUSES:
            problem("status", "status", "status must be draft, live or ended")
        clean["status"] = data["status"]
    if "seal_final" in data:
        if not isinstance(data["seal_final"], bool):
            problem("seal_final", "seal_final", "seal_final must be true or false")
        clean["seal_final"] = data["seal_final"]
    if "lang" in data:
        if data["lang"] not in SHOW_LANGS:
            problem("lang", "lang", "lang must be zh-CN or en")
        clean["lang"] = data["lang"]
    if "sides" in data:
        clean["sides"] = _check_sides(data["sides"], limits, problem)
    if "plan" in data:
        clean["plan"] = _check_plan(data["plan"], limits, problem)
    return clean, problems


def _check_sides(sides: Any, limits: TextLimits, problem: "Problem") -> dict[str, dict[str, str]]:
    if not isinstance(sides, dict) or set(sides) != set(SIDES):
        problem("sides", "sides", "sides must have exactly a and b")
        return {}
    out = {}
    for key in SIDES:
        side = sides[key]
        if not isinstance(side, dict):
            problem(f"sides.{key}", "sides", f"side {key} must be an object")
            continue
        clean = {}
        for name in ("name", "guest", "org"):
            limit = limits.side_field(name)
            value = side.get(name, "")
            if not isinstance(value, str) or len(value) > limit:
                problem(
                    f"sides.{key}.{name}",
                    "too_long",
                    f"sides.{key}.{name} must be text of at most {limit}",
                    field=name,
                    n=limit,
                )
                value = ""
            clean[name] = value
        guest_id = side.get("guest_id")  # a roster guest (domain/guests.py), or none
        if guest_id and (not isinstance(guest_id, str) or not GUEST_ID.match(guest_id)):
            problem(f"sides.{key}.guest_id", "guest_id", f"sides.{key}.guest_id must be a roster guest's id")
        elif guest_id:
            clean["guest_id"] = guest_id
        color = side.get("color") or DEFAULT_COLORS[key]
        if not isinstance(color, str) or not COLOR.match(color):
            problem(f"sides.{key}.color", "color", f"sides.{key}.color must be #rrggbb")
        clean["color"] = color
        if not clean["name"]:
            clean["name"] = DEFAULT_SIDE_NAMES[key]
        out[key] = clean
    return out


def _check_plan(plan: Any, limits: TextLimits, problem: "Problem") -> list[dict[str, Any]]:
    if not isinstance(plan, list):
        problem("plan", "plan", "plan must be a list")
        return []
    if len(plan) > limits.plan_rounds:
        problem("plan", "plan_long", f"plan must have at most {limits.plan_rounds} rounds", n=limits.plan_rounds)
    out = []
    for i, item in enumerate(plan, 1):
        if not isinstance(item, dict):
            problem("plan", "plan", "each plan item must be an object")
            continue
        topic, duration = item.get("topic"), item.get("duration_s", 300)
        if not isinstance(topic, str) or not 1 <= len(topic) <= limits.topic:
            problem(
                f"plan.{i}.topic",
                "topic",
                f"plan topic {i} must be 1..{limits.topic} characters",
                n=i,
                max=limits.topic,
            )
        if type(duration) is not int or not rmod.MIN_DURATION_S <= duration <= rmod.MAX_DURATION_S:
            problem(
                f"plan.{i}.duration_s",
                "duration",
                f"plan duration {i} must be {rmod.MIN_DURATION_S}..{rmod.MAX_DURATION_S} seconds",
                n=i,
                lo=rmod.MIN_DURATION_S,
                hi=rmod.MAX_DURATION_S,
            )
        out.append({"topic": topic, "duration_s": duration})
    return out


def new_show(
    slug: str,
    title: str,
    sides: Any,
    plan: list[Any] | None = None,
    date: str = "",
    now: int = 0,
    status: str = "live",
    limits: TextLimits = LIMITS,
    overlay_key: str = "",
    lang: str = SHOW_LANGS[0],
) -> ShowState:
    episode = {"slug": slug, "title": title, "sides": sides, "plan": plan or [], "date": date, "status": status}
    clean, problems = check_episode({**episode, "lang": lang}, limits)
    if problems:
        raise problems[0]
    return ShowState(
        slug,
        title=title,
        status=status,
        sides=clean["sides"],
        plan=clean["plan"],
        date=date,
        created=now,
        overlay_key=overlay_key,
        lang=lang,
    )


def question_events(state: ShowState, changed: list[Question]) -> list[dict[str, Any]]:
    """Events for changed questions: phones and overlays hear of one only if it is, or was, public."""
    events = []
    for q in changed:
        event = {"type": "question", "question": q.record()}
        before = state.questions.get(q.id)
        events.append(event if q.public or (before is not None and before.public) else private(event))
    return events


def decide_moderation(state: ShowState, qid: str, action: str, by: str = "") -> list[dict[str, Any]]:
    changed, featured = qmod.moderate(state.questions, state.featured, qid, action, by)
    events = question_events(state, changed)
    if featured != state.featured:
        events.append({"type": "show", "show": {"featured": featured}})
    return events


def decide_cluster(state: ShowState, qid: str, into: str | None, by: str = "") -> list[dict[str, Any]]:
    """Merge a question into another's cluster (`into`), or split it out (None)."""
    changed = qmod.merge(state.questions, qid, into, by) if into else qmod.split(state.questions, qid, by)
    return question_events(state, changed)


def decide_restore(
    state: ShowState, before: list[dict[str, Any]], after: list[dict[str, Any]], featured: str | None
) -> list[dict[str, Any]]:
    """Undo: put questions back as they were (`before`) if they are still as the action
    left them (`after`), and the question on air with them."""
    for record in after:
        now = state.questions.get(record["id"])
        then = Question.from_record(record)  # (upvotes only grow: they are not the action's)
        if now is None or replace(now, upvotes=0) != replace(then, upvotes=0):  # guard: undo stale
            raise DomainError("conflict", "it has changed since; nothing to undo")
    restored = [Question.from_record(r) for r in before]
    events = question_events(state, [replace(q, upvotes=state.questions[q.id].upvotes) for q in restored])
    if featured != state.featured:
        events.append({"type": "show", "show": {"featured": featured}})
    return events


def decide_question_edit(state: ShowState, qid: str, text: str, by: str = "") -> list[dict[str, Any]]:
    """The host rewords a question for the screen; the record keeps the words as asked."""
    old = state.questions.get(qid)
    new = qmod.edit(old, qid, text, by)
    if new == old:
        return []  # it already reads so
    event = {"type": "question", "question": new.record()}
    return [event if new.public else private(event)]


def decide_round(
    state: ShowState,
    action: str,
    now: int,
    topic: str = "",
    duration_s: int = 0,
    votes: VoteCounts | None = None,
    sealed: bool | None = None,
) -> list[dict[str, Any]]:
    current = state.round
    if action == "start":
        if state.status == "ended":  # guard: no round after the end
            raise DomainError("conflict", "the show has ended")
        planned = state.plan[current.index] if current.index < len(state.plan) else None
        if not topic and planned is None:
            raise DomainError("invalid", "a round needs a topic (the plan has none for it)")
        if planned is not None:  # an empty topic (or duration) is the plan's
            topic, duration_s = topic or planned["topic"], duration_s or planned["duration_s"]
        if sealed is None:
            sealed = verdict.sealed_by_default(current.index + 1, len(state.plan), state.seal_final)
        new = rmod.start(current, topic, duration_s, now, sealed)
        return [
            {"type": "round", "round": new.record()},
            {"type": "show", "show": {"floor": verdict.empty_floor()}},  # the clocks start afresh
            *([{"type": "show", "show": {"status": "live"}}] if state.status == "draft" else []),
        ]
    if action == "pause":
        return [{"type": "round", "round": rmod.pause(current, now).record()}]
    if action == "resume":
        return [{"type": "round", "round": rmod.resume(current, now).record()}]
    if action == "end":
        new = rmod.end(current, now)
        counts = votes or VoteCounts.empty()
        tally = dict(counts.counted)
        win = rmod.winner(tally)
        result = {
            "floor": verdict.floor_totals(state.floor, now),  # speaking time per side in the round
            "sealed": current.sealed,
            "index": new.index,
            "topic": new.topic,
            "duration_s": new.duration_s,
            "votes": tally,
            "held": dict(counts.reasons),
            "winner": win,
        }
        won = dict(state.rounds_won)
        if win:
            won[win] = won.get(win, 0) + 1
        return [
            {"type": "round", "round": new.record(), "rounds": [*state.rounds, result], "rounds_won": won},
            {"type": "show", "show": {"floor": verdict.empty_floor()}},
        ]
    raise DomainError("invalid", f"unknown round action {action}")


def decide_stance_phase(state: ShowState, phase: str, action: str) -> list[dict[str, Any]]:
    """Open or close the pre- or post-debate stance on every phone."""
    return [
        {"type": "show", "show": {"stance_phases": verdict.decide_stance_phase(state.stance_phases, phase, action)}}
    ]


def decide_floor(state: ShowState, holder: str | None, now: int) -> list[dict[str, Any]]:
    """Give the floor to a side, the host, or nobody."""
    return [{"type": "show", "show": {"floor": verdict.decide_floor(state.floor, holder, now)}}]


def decide_end_show(state: ShowState, now: int, votes: VoteCounts | None = None) -> list[dict[str, Any]]:
    """The host ends the show: the open round ends (its result counted), the question
    on air comes off, and the show is `ended` (phones' votes, questions and likes stop)."""
    if state.status == "ended":
        raise DomainError("conflict", "the show has already ended")
    events = decide_round(state, "end", now, votes=votes) if state.round.open else []
    on_air = state.questions.get(state.featured) if state.featured else None
    if on_air is not None and on_air.status == qmod.FEATURED:  # guard: off air at the end
        events.append({"type": "question", "question": replace(on_air, status=qmod.APPROVED).record()})
    return [*events, {"type": "show", "show": {"status": "ended", "featured": None}}]


def decide_venue(state: ShowState, network: str, add: bool) -> list[dict[str, Any]]:
    """Declare (or withdraw) a venue network for the show: its phones are held to no
    per-network budget."""
    try:
        (net,) = parse_networks([network])
    except ValueError as exc:
        raise DomainError("invalid", str(exc), "network") from None
    venues = [v for v in state.venues if v != str(net)]
    if add:
        if net.num_addresses > (1 << 16 if net.version == 4 else 1 << 80):
            raise DomainError("invalid", "a venue network is at most a /16 (IPv4) or a /48 (IPv6)", "network")
        venues.append(str(net))
    elif len(venues) == len(state.venues):
        raise DomainError("not_found", f"{net} is not a venue network of this show", "network")
    return [private({"type": "show", "show": {"venues": sorted(venues)}})]


def decide_overlay_key(state: ShowState, key: str) -> list[dict[str, Any]]:
    """A new overlay key: screens on the old keyed address stop counting."""
    return [private({"type": "show", "show": {"overlay_key": key}})]


def decide_points(state: ShowState, side: str, points: int) -> list[dict[str, Any]]:
    if side not in SIDES:
        raise DomainError("invalid", "side must be a or b")
    if not 0 <= points <= MAX_POINTS:
        raise DomainError("invalid", f"points must be 0..{MAX_POINTS}")
    return [{"type": "points", "points": {**state.points, side: points}}]


EDITABLE = ("title", "date", "status", "lang", "sides", "plan", "seal_final")


def decide_edit(state: ShowState, changes: dict[str, Any], limits: TextLimits = LIMITS) -> list[dict[str, Any]]:
    """Producer edits of an episode: title, date, status, language, sides, round plan."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise DomainError("invalid", f"cannot edit {', '.join(sorted(unknown))}", sorted(unknown)[0])
    clean, problems = check_episode(changes, limits)
    if problems:
        raise problems[0]
    clean = {k: v for k, v in clean.items() if getattr(state, k) != v}
    return [{"type": "show", "show": clean}] if clean else []


def decide_reset(state: ShowState, now: int) -> list[dict[str, Any]]:
    """A rehearsal reset: rounds, points and results back to zero, marked in the show."""
    if state.round.open:
        raise DomainError("conflict", "end the running round before a reset")
    on_air = state.questions.get(state.featured) if state.featured else None
    off_air = (
        [{"type": "question", "question": replace(on_air, status=qmod.APPROVED).record()}]
        if on_air is not None and on_air.status == qmod.FEATURED
        else []
    )
    return [
        *off_air,
        {"type": "round", "round": Round().record(), "rounds": [], "rounds_won": {"a": 0, "b": 0}},
        {"type": "points", "points": {"a": 0, "b": 0}},
        {"type": "show", "show": {"rehearsal": now, "featured": None}},
    ]


def decide_ban(state: ShowState, device: str, ban: bool) -> list[dict[str, Any]]:
    """Ban (or unban) a device; a ban also rejects its questions, taking them off every screen."""
    banned = set(state.banned)
    if (device in banned) == ban:
        raise DomainError("conflict", "already banned" if ban else "not banned")
    events: list[dict[str, Any]] = []
    featured = state.featured
    if ban:
        banned.add(device)
        for q in state.questions.values():
            if q.device == device and q.status != qmod.REJECTED:
                event = {"type": "question", "question": replace(q, status=qmod.REJECTED).record()}
                events.append(event if q.public else private(event))
                if featured == q.id:
                    featured = None
    else:
        banned.discard(device)
    change: dict[str, Any] = {"banned": sorted(banned)}
    show_event = {"type": "show", "show": change}
    if featured != state.featured:
        change["featured"] = featured
    else:
        private(show_event)
    return [*events, show_event]


def decide_upvote(state: ShowState, qid: str) -> Question:
    q = state.questions.get(qid)
    if q is None or not q.public:
        raise DomainError("not_found", f"no question {qid}")
    return q


class OrAbsent(bytes):
    """An expected field value that also matches a field never stored: a field
    added to the model after the show was created holds its default."""


_DEFAULTS = ShowState("")


def field_value(state: ShowState, name: str) -> bytes | None:
    """The stored form of one field as the state has it now (for compare-and-set)."""
    if name.startswith("q:"):
        q = state.questions.get(name[2:])
        return question_field(q) if q else None
    if name == "round":
        value = dumps(state.round.record())
        return OrAbsent(value) if state.round == _DEFAULTS.round else value
    value = dumps(getattr(state, name))
    return OrAbsent(value) if value == dumps(getattr(_DEFAULTS, name)) else value
