"""Property: random frames at each role never crash the server; an invalid one is
answered with exactly one error and changes nothing; a valid one is answered once,
under its id, with the ack or the error the show's state calls for (a model of it
kept from the replies), leaves the socket open, and moves the state exactly as it
says: an error (or a resent id) changes nothing, an ack changes what that message
changes (a like is counted once in the next tally, a vote is the device's vote, a
question is added, ...), and the console's `seq` never goes down or skips.

Synchronisation is by events: every frame is followed by a `hello` with an id (the
server answers a socket's frames in order), the console by a `hello` of its own
(its event frames come before that ack), and counters by a like from a marker
phone, acknowledged, whose first tally also holds everything flushed before it."""

import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from conftest import Server, create_show, device_cookie, host_cookies
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from server import protocol
from server.domain import LIMITS
from server.domain.questions import MODERATION, PUBLIC
from server.domain.rounds import MAX_DURATION_S, MIN_DURATION_S
from server.domain.show import MAX_POINTS
from server.domain.text import normalise, single_line
from server.node import device_hash

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
FIELDS = ("side", "count", "text", "name", "question", "topic", "duration_s", "points", "device", "id")
VALUES = {
    "side": st.sampled_from(["a", "b", "c", "", None, 1]),
    "count": st.integers(-5, 60) | JSONISH,
    "question": st.sampled_from(["q1", "q2", "q999", "", None]) | JSONISH,
    "duration_s": st.integers(0, 9000) | JSONISH,
    "points": st.integers(-3, 10_001) | JSONISH,
}
MESSAGES = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    # (not `show.end`: it would end the fuzzed show for good; test_on_air.py tries it)
    st.sampled_from([t for t in protocol.CLIENT_TYPES if t != "show.end"] + ["dance", "", "LIKE"]) | JSONISH,
    st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=4).flatmap(
        lambda d: st.fixed_dictionaries({k: VALUES.get(k, st.just(v)) for k, v in d.items()})
    ),
)
FRAMES = (
    MESSAGES.map(lambda m: orjson.dumps(m).decode())
    | st.text(max_size=200)
    | st.binary(max_size=100)
    | JSONISH.map(lambda v: json.dumps(v))
)

# Well-formed messages of every type, so that valid frames are common enough to check
# (random frames above are almost never valid). "fresh" becomes a new id; "dup-*" repeat.
SIDE = st.sampled_from(["a", "b"])
QID = st.sampled_from(["q1", "q2", "q3", "q999"])
PHASE = st.sampled_from(["pre", "post"])
TEXT = st.integers(0, 4).flatmap(lambda i: st.just("长" * 300) if i == 0 else st.text(max_size=40))
HELLO = st.just({"type": "hello"})
COUNT = st.sampled_from([1, protocol.MAX_COUNT]) | st.integers(1, protocol.MAX_COUNT)  # the edges, and between
POINTS = st.sampled_from([-1, 0, MAX_POINTS, MAX_POINTS + 1]) | st.integers(-3, 10_001)
DURATION = st.sampled_from([MIN_DURATION_S - 1, MIN_DURATION_S, MAX_DURATION_S, MAX_DURATION_S + 1]) | st.integers(
    0, 9000
)
LIKE = st.fixed_dictionaries({"type": st.just("like"), "side": SIDE, "count": COUNT})
AUDIENCE_SHAPES = st.one_of(
    HELLO,
    LIKE,
    LIKE,  # likes twice as often: the counters are the busiest state
    st.fixed_dictionaries({"type": st.just("vote"), "side": SIDE}),
    st.fixed_dictionaries({"type": st.just("ask"), "text": TEXT}, optional={"name": st.text(max_size=20)}),
    st.fixed_dictionaries({"type": st.just("upvote"), "question": QID}),
    st.fixed_dictionaries({"type": st.just("stance"), "phase": PHASE, "side": st.sampled_from(["a", "b", "u"])}),
)
CONSOLE_SHAPES = st.one_of(
    HELLO,
    st.fixed_dictionaries({"type": st.sampled_from(protocol.MODERATION_TYPES), "question": QID}),
    st.fixed_dictionaries({"type": st.just("question.edit"), "question": QID, "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("question.merge"), "question": QID, "into": QID}),
    st.fixed_dictionaries({"type": st.sampled_from(["question.split", "desk.focus"]), "question": QID}),
    st.just({"type": "question.undo"}),
    st.fixed_dictionaries({"type": st.sampled_from(["stance.open", "stance.close"]), "phase": PHASE}),
    st.fixed_dictionaries({"type": st.just("floor.set"), "holder": st.sampled_from(["a", "b", "host", None])}),
    st.fixed_dictionaries({"type": st.just("round.start"), "topic": st.text(max_size=20), "duration_s": DURATION}),
    st.fixed_dictionaries({"type": st.sampled_from(["round.pause", "round.resume", "round.end"])}),
    st.fixed_dictionaries({"type": st.just("points.set"), "side": SIDE, "points": POINTS}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["device.ban", "device.unban"]), "device": st.sampled_from(["dev-x", "dev-y"])}
    ),
    st.just({"type": "overlay.reload"}),
)
SHAPES = {"audience": AUDIENCE_SHAPES, "console": CONSOLE_SHAPES}


def frames_for(role: str):
    """Half random frames, half well-formed messages, mostly of the role's own types
    (`|` would flatten FRAMES' four branches and give the rest a fifth)."""
    own, other = SHAPES.get(role, AUDIENCE_SHAPES), SHAPES["console" if role == "audience" else "audience"]
    shapes = st.integers(0, 3).flatmap(lambda i: other if i == 0 else own)
    well_formed = st.builds(
        lambda msg, msg_id: {**msg, "id": msg_id} if msg_id else msg,
        shapes,
        st.sampled_from([None, "fresh", "fresh", "fresh", "dup-1", "dup-2"]),
    )
    return st.booleans().flatmap(lambda wf: well_formed if wf else FRAMES)


# Run first at every role, so the main properties are checked every time, not by luck:
# counts at the edges, a resent id, a second upvote, the points limit, a reload.
EXAMPLES = [
    {"type": "like", "side": "a", "count": protocol.MAX_COUNT, "id": "fresh"},
    {"type": "like", "side": "b", "count": 1},
    {"type": "like", "side": "a", "count": 7, "id": "resent"},
    {"type": "like", "side": "a", "count": 7, "id": "resent"},  # the same id again: not counted again
    {"type": "vote", "side": "b", "id": "fresh"},
    {"type": "ask", "text": "  两新组织的党建 ", "name": "市民", "id": "fresh"},
    {"type": "upvote", "question": "q1", "id": "fresh"},
    {"type": "upvote", "question": "q1", "id": "fresh"},  # once per device
    {"type": "points.set", "side": "a", "points": MAX_POINTS, "id": "fresh"},
    {"type": "points.set", "side": "b", "points": MAX_POINTS + 1, "id": "fresh"},
    {"type": "round.pause", "id": "fresh"},
    {"type": "round.resume", "id": "fresh"},
    {"type": "question.feature", "question": "q1", "id": "fresh"},
    {"type": "overlay.reload", "id": "fresh"},
]

OPEN = ("running", "paused")


@pytest.fixture(scope="module")
def fuzz_server():
    srv = Server(
        LIKE_RATE="100000",
        LIKE_BURST="100000",
        VOTE_RATE="100000",
        VOTE_BURST="100000",
        UPVOTE_RATE="100000",
        UPVOTE_BURST="100000",
        CONSOLE_RATE="100000",
        CONSOLE_BURST="100000",
        QUESTION_INTERVAL_S="0.00001",
        FLOOD_STRIKES="100000000",
        FRAME_RATE="100000",
        FRAME_BURST="100000",
        CONNECT_BURST="100000",
    ).start()
    yield srv
    srv.cleanup()


_n = itertools.count()


class Watch:
    """One socket and every frame it received, read on demand, with deadlines."""

    def __init__(self, ws, name: str, absorb=None) -> None:
        self.ws, self.name = ws, name
        self.frames: list[dict] = []
        self.absorb = absorb or (lambda frame: None)

    def _take(self, timeout: float) -> dict:
        frame = orjson.loads(self.ws.recv(timeout))
        self.frames.append(frame)
        self.absorb(frame)
        return frame

    def drain(self) -> None:
        """Keep what has arrived (so no socket backs up while another one is fuzzed)."""
        with contextlib.suppress(TimeoutError):
            while True:
                self._take(0)

    def until(self, pred, start: int, what: str, timeout: float = 5.0) -> int:
        """The index of the first frame from `start` matching `pred`, reading as needed."""
        for i in range(start, len(self.frames)):
            if pred(self.frames[i]):
                return i
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {what} within {timeout} s; last: {self.frames[-3:]}")
            with contextlib.suppress(TimeoutError):
                if pred(self._take(left)):
                    return len(self.frames) - 1

    def request(self, msg: dict, what: str) -> dict:
        """Send with a fresh id; its reply (every frame before it is read too)."""
        msg = {**msg, "id": f"{what}-{next(_n)}"}
        start = len(self.frames)
        self.ws.send(orjson.dumps(msg).decode())
        i = self.until(lambda f: f.get("id") == msg["id"] and f["type"] in ("ack", "error"), start, what)
        return self.frames[i]


@dataclass
class Model:
    """What the show must be, from the replies the test has seen."""

    likes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    votes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})  # the fuzzed phone is the only voter
    upvoted: set[str] = field(default_factory=set)
    banned: set[str] = field(default_factory=set)
    reloads: int = 0  # reload frames the overlay must have had
    answered: dict[tuple[str, str], dict] = field(default_factory=dict)  # (role, id) -> first reply
    questions: dict[str, dict] = field(default_factory=dict)  # as the console sees them
    phases: dict[str, str] = field(default_factory=lambda: {"pre": "idle", "post": "idle"})  # stance phases
    floor: str | None = None  # who has the floor
    seq: int = -1  # the console's: every event
    events: list[dict] = field(default_factory=list)  # the console's discrete frames

    def absorb_console(self, frame: dict) -> None:
        """Every console frame: `seq` never goes down, events come one by one without gaps."""
        kind = frame["type"]
        if kind == "snapshot":
            assert frame["seq"] >= self.seq, frame
            self.seq = frame["seq"]
            self.questions = {q["id"]: q for q in frame["show"]["questions"]}
            self.phases = dict(frame["show"]["stance"]["phases"])
            self.floor = frame["show"]["floor"]["holder"]
            return
        if "seq" not in frame:
            return
        if kind in protocol.DISCRETE_TYPES:
            assert frame["seq"] == self.seq + 1, (self.seq, frame)
            self.events.append(frame)
            if kind == "question":
                self.questions[frame["question"]["id"]] = frame["question"]
            if kind == "show":
                self.phases.update(frame["show"].get("stance_phases", {}))
                if "floor" in frame["show"]:
                    self.floor = frame["show"]["floor"]["holder"]
        assert frame["seq"] >= self.seq, (self.seq, frame)
        self.seq = frame["seq"]


@dataclass
class Fuzz:
    srv: Server
    slug: str
    watches: dict[str, Watch]
    model: Model
    device: str  # the fuzzed phone's device hash
    base: dict = field(default_factory=dict)

    def fingerprint(self) -> dict:
        show = httpx.get(f"{self.srv.url}/api/shows/{self.slug}").json()
        t = show["show"]["tally"]
        return {
            "pseq": show["seq"],
            "likes": t["likes"],
            "votes": t["votes"],
            "points": t["points"],
            "round": show["show"]["round"]["status"],
        }

    def console_sync(self) -> None:
        """Every event committed so far has reached the console (its frames precede this ack)."""
        for watch in self.watches.values():
            watch.drain()
        assert self.watches["console"].request({"type": "hello"}, "sync")["type"] == "ack"

    def settle(self) -> dict:
        """Counters flushed: a like from the marker phone, acked after everything the test
        sent before, is flushed by a later tick than any of it; the first tally with it
        holds every count (and a double count) too. Returns the show's fingerprint."""
        console, model = self.watches["console"], self.model
        start = len(console.frames)
        assert self.watches["marker"].request({"type": "like", "side": "a", "count": 1}, "marker")["type"] == "ack"
        model.likes["a"] += 1
        i = console.until(
            lambda f: f["type"] == "tally" and all(f["likes"][s] >= model.likes[s] for s in "ab"),
            start,
            "tally with the marker like",
        )
        assert console.frames[i]["likes"] == model.likes, "likes counted other than acknowledged"
        fp = self.fingerprint()
        assert fp["likes"] == model.likes and fp["votes"] == model.votes, (fp, model)
        return fp


@pytest.fixture(scope="module")
def fuzz(fuzz_server):
    srv = fuzz_server
    slug = create_show(srv.url)
    phone = device_cookie(srv.url, slug)
    cookies = {
        "audience": f"lt_device={phone}",
        "console": f"lt_session={host_cookies(srv.url)['lt_session']}",
        "overlay": "",
        "marker": f"lt_device={device_cookie(srv.url, slug)}",
    }
    model = Model()
    watches = {}
    with contextlib.ExitStack() as stack:
        for name, cookie in cookies.items():
            role = "audience" if name == "marker" else name
            ws = stack.enter_context(
                connect(
                    f"{srv.ws_url}/ws/{role}/{slug}",
                    compression=None,
                    additional_headers={"Cookie": cookie} if cookie else {},
                )
            )
            watch = watches[name] = Watch(ws, name, model.absorb_console if name == "console" else None)
            assert watch._take(5)["type"] == "snapshot"
            if role != "overlay":  # as the pages do (and within the first-message deadline)
                assert watch.request({"type": "hello"}, "hello")["type"] == "ack"
        harness = Fuzz(
            srv, slug, watches, model, device_hash(phone.split(".", 1)[0])
        )  # cookie: id.minted.parent.signature
        # a public question that is not the fuzzed phone's (to upvote) and an open round (to vote in)
        marker, console = watches["marker"], watches["console"]
        qid = marker.request({"type": "ask", "text": "种子问题"}, "seed")["question"]
        assert console.request({"type": "question.approve", "question": qid}, "seed")["type"] == "ack"
        start = {"type": "round.start", "topic": "模糊测试", "duration_s": MAX_DURATION_S}
        assert console.request(start, "seed")["type"] == "ack"
        harness.console_sync()
        harness.base = harness.settle()
        yield harness


def exchange(watch: Watch, frame: str | bytes) -> list[dict]:
    """Send a frame and a sentinel; return every reply that came before the sentinel's reply."""
    start = len(watch.frames)
    watch.ws.send(frame)
    sentinel = f"sentinel-{next(_n)}"
    watch.ws.send(orjson.dumps({"type": "hello", "id": sentinel}).decode())  # overlays answer it "forbidden"
    end = watch.until(lambda f: f.get("id") == sentinel and f["type"] in ("ack", "error"), start, "sentinel reply")
    assert watch.frames[end]["type"] == ("error" if watch.name == "overlay" else "ack"), watch.frames[end]
    return [f for f in watch.frames[start:end] if f["type"] in ("ack", "error")]


def expected(fz: Fuzz, msg: protocol.Message, fp: dict) -> str:
    """The reply a valid message must get: "ack" or an error code."""
    m, kind = fz.model, msg.type
    if kind in ("hello", "like", "overlay.reload", "overlay.rekey", "desk.focus"):
        return "ack"
    if kind == "question.undo":  # whether the last action can still be undone: both are fine
        return "ack|conflict"
    if kind in ("venue.add", "venue.remove"):  # (a network's validity is test_integrity's)
        return "ack|invalid|not_found"
    if kind == "floor.set":
        return "conflict" if msg.holder == m.floor else "ack"
    if kind == "stance.open":
        return "conflict" if m.phases[msg.phase] == "open" else "ack"
    if kind in ("stance.close", "stance"):
        return "ack" if m.phases[msg.phase] == "open" else "conflict"
    if kind in ("question.merge", "question.split"):
        q, into = m.questions.get(msg.question), m.questions.get(msg.into or msg.question)
        if q is None or into is None:
            return "not_found"
        if kind == "question.merge":
            return "conflict" if q["cluster"] == into["cluster"] else "ack"
        alone = sum(x["cluster"] == q["cluster"] for x in m.questions.values()) < 2
        return "conflict" if alone else "ack"
    if kind == "votes.release":
        return "ack" if fp["round"] in OPEN else "conflict"
    if kind == "question.edit":
        q = m.questions.get(msg.question)
        if len(normalise(msg.text)) > LIMITS.question:
            return "too_large"
        return "not_found" if q is None else "conflict" if q["status"] == "rejected" else "ack"
    if kind == "vote":
        return "ack" if fp["round"] in OPEN else "conflict"
    if kind == "upvote":
        q = m.questions.get(msg.question)
        if q is None or q["status"] not in PUBLIC:
            return "not_found"
        if q.get("device") == fz.device:  # not one's own question
            return "conflict"
        return "conflict" if msg.question in m.upvoted else "ack"
    if kind.startswith("question."):
        q = m.questions.get(msg.question)
        if q is None:
            return "not_found"
        return "ack" if q["status"] in MODERATION[kind.split(".", 1)[1]][0] else "conflict"
    if kind == "ask":  # (names here are short; no word filter refuses)
        text = normalise(msg.text)
        return "invalid" if not text else "too_large" if len(text) > LIMITS.question else "ack"
    if kind == "round.start":  # (topics here are short)
        if not single_line(msg.topic):
            return "invalid"
        if fp["round"] in OPEN:
            return "conflict"
        return "ack" if MIN_DURATION_S <= msg.duration_s <= MAX_DURATION_S else "invalid"
    if kind == "round.pause":
        return "ack" if fp["round"] == "running" else "conflict"
    if kind == "round.resume":
        return "ack" if fp["round"] == "paused" else "conflict"
    if kind == "round.end":
        return "ack" if fp["round"] in OPEN else "conflict"
    if kind == "points.set":
        return "ack" if 0 <= msg.points <= MAX_POINTS else "invalid"
    if kind in ("device.ban", "device.unban"):
        return "ack" if (msg.device in m.banned) == (kind == "device.unban") else "conflict"
    raise AssertionError(f"no expectation for {kind}")


def check_valid(fz: Fuzz, role: str, msg: protocol.Message, replies: list[dict], want: str, events: int) -> None:
    """`want`: the reply expected, and `events`: how many event frames the console had,
    both from before the message was sent (the console may be the socket fuzzed)."""
    m, base = fz.model, fz.base
    # answered once: under its id, or (without one) only if refused
    if msg.id is not None:
        assert len(replies) == 1 and replies[0]["id"] == msg.id, (msg, replies)
        assert replies[0]["type"] in ("ack", "error"), replies
    else:
        assert replies == [] or (len(replies) == 1 and replies[0]["type"] == "error" and "id" not in replies[0]), (
            msg,
            replies,
        )
    reply = replies[0] if replies else None
    if reply is not None and reply["type"] == "error":
        assert reply["code"] in protocol.ERROR_CODES, reply
    outcome = "ack" if reply is None or reply["type"] == "ack" else reply["code"]

    key = (role, msg.id)
    replayed = msg.id is not None and msg.type != "hello" and key in m.answered
    if replayed:  # a resent id: the first reply again, and nothing applied again
        assert reply == m.answered[key], (msg, reply, m.answered[key])
    else:
        assert outcome in want.split("|"), (msg, reply, want)
        if msg.id is not None and msg.type != "hello" and outcome not in protocol.TRANSIENT_CODES:
            m.answered[key] = reply

    fz.console_sync()
    new = m.events[events:]
    applied = outcome == "ack" and not replayed
    quiet = msg.type in ("hello", "overlay.reload", "votes.release", "desk.focus", "stance") or (
        msg.type == "question.edit" and not new
    )
    if not applied or quiet:
        assert new == [], (msg, reply, new)  # an error, a resent id or a hello changes nothing
        assert fz.fingerprint() == base, (msg, reply)
        if applied and msg.type == "overlay.reload":  # sent to the overlays, once
            m.reloads += 1
            overlay = fz.watches["overlay"]
            reloads = [i for i, f in enumerate(overlay.frames) if f["type"] == "reload"]
            if len(reloads) < m.reloads:
                overlay.until(lambda f: f["type"] == "reload", reloads[-1] + 1 if reloads else 0, "reload frame")
            assert sum(f["type"] == "reload" for f in overlay.frames) == m.reloads
        return

    if msg.type == "like":
        m.likes[msg.side] += msg.count
    elif msg.type == "vote":
        assert reply is None or reply.get("side") == msg.side, reply
        m.votes = {s: int(s == msg.side) for s in "ab"}
    elif msg.type == "round.start":
        m.votes = {"a": 0, "b": 0}  # a new round has no votes yet
    fp = fz.settle()  # likes and votes as the model has them

    if msg.type in ("like", "vote"):
        assert new == [] and fp == {**base, "likes": m.likes, "votes": m.votes}, (msg, fp, base)
    elif msg.type == "ask":
        assert [e["type"] for e in new] == ["question"], new
        q = new[0]["question"]
        assert q["status"] == "pending" and q["device"] == fz.device, q
        assert reply is None or reply["question"] == q["id"], (reply, q)
        assert fp == {**base, "likes": m.likes}, (fp, base)  # pending: phones and overlays do not see it
    elif msg.type == "upvote":
        assert [(e["type"], e["question"]["id"], e["question"]["upvotes"]) for e in new] == [
            ("question", msg.question, 1)
        ], new  # the fuzzed phone is its only upvoter
        m.upvoted.add(msg.question)
        assert fp == {**base, "likes": m.likes, "pseq": base["pseq"] + 1}, (fp, base)
    else:  # a console command
        assert new, (msg, "acknowledged but nothing committed")
        assert fp["pseq"] >= base["pseq"]
        if msg.type == "question.edit":  # the screens show the host's wording, the console both
            q, text = m.questions[msg.question], normalise(msg.text)
            assert [e["question"]["id"] for e in new] == [msg.question], new
            if text and "original" in q:
                assert q["text"] == text, (msg, q)
            else:  # the words as asked (again)
                assert "original" not in q and q["text"] == (text or q["text"]), (msg, q)
        elif msg.type == "question.merge":
            assert m.questions[msg.question]["cluster"] == m.questions[msg.into]["cluster"], (msg, new)
        elif msg.type == "question.split":
            assert m.questions[msg.question]["cluster"] == msg.question, (msg, new)
        elif msg.type == "question.undo":
            pass  # (test_desk.py checks what an undo puts back)
        elif msg.type.startswith("question."):
            target = MODERATION[msg.type.split(".", 1)[1]][1]
            assert m.questions[msg.question]["status"] == target, (msg, m.questions[msg.question])
        elif msg.type.startswith("round."):
            status = {"start": "running", "pause": "paused", "resume": "running", "end": "finished"}
            assert fp["round"] == status[msg.type.split(".", 1)[1]], (msg, fp)
            assert new[0]["type"] == "round" and new[0]["round"]["status"] == fp["round"], new
            if msg.type == "round.start":
                assert new[0]["round"]["duration_s"] == msg.duration_s, new
        elif msg.type == "points.set":
            assert fp["points"] == {**base["points"], msg.side: msg.points}, (msg, fp)
        elif msg.type in ("device.ban", "device.unban"):
            (m.banned.add if msg.type == "device.ban" else m.banned.discard)(msg.device)
            assert new[-1]["type"] == "show" and (msg.device in new[-1]["show"]["banned"]) == (
                msg.type == "device.ban"
            ), new
    fz.base = fp


def examples(frames: list):
    def decorate(test):
        for frame in reversed(frames):  # (the innermost @example runs first)
            test = example(frame=frame)(test)
        return test

    return decorate


@pytest.mark.parametrize("role", ["audience", "console", "overlay"])
def test_random_frames(fuzz, role):
    watch = fuzz.watches[role]
    fuzz.console_sync()
    fuzz.base = fuzz.settle()
    seen = {"valid": 0}
    failures: list[BaseException] = []

    # No shrinking and no example database: each example changes the live show, so a
    # replay is not the same test. After a failure the model no longer matches the show:
    # the first failure is the one reported.
    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=(Phase.explicit, Phase.generate),
        report_multiple_bugs=False,
    )
    @given(frame=frames_for(role))
    @examples(EXAMPLES)
    def check(frame):
        if failures:
            raise failures[0]
        try:
            one(frame)
        except BaseException as exc:
            exc.add_note(f"frame: {frame!r}")
            failures.append(exc)
            raise

    def one(frame):
        if isinstance(frame, dict):
            if frame.get("id") == "fresh":
                frame = {**frame, "id": f"fresh-{next(_n)}"}
            frame = orjson.dumps(frame).decode()
        try:
            valid = protocol.parse(frame, role) if isinstance(frame, str) else None
        except protocol.ProtocolError:
            valid = None
        want = expected(fuzz, valid, fuzz.base) if valid is not None else None
        events = len(fuzz.model.events)
        replies = exchange(watch, frame)
        if valid is None:
            assert len(replies) == 1 and replies[0]["type"] == "error", (frame, replies)
            assert replies[0]["code"] in protocol.ERROR_CODES, replies
            assert fuzz.fingerprint() == fuzz.base, frame
        else:
            seen["valid"] += 1
            check_valid(fuzz, role, valid, replies, want, events)

    try:
        check()
    except BaseException:
        if failures:
            raise failures[0] from None
        raise
    # still open and serving, every count as acknowledged (a late double count shows here)
    last = exchange(watch, orjson.dumps({"type": "hello", "id": "last"}).decode())
    assert last == (
        [{"type": "ack", "id": "last"}]
        if role != "overlay"
        else [{"type": "error", "id": "last", "code": "forbidden", "message": last[0]["message"]}]
    )
    fuzz.console_sync()
    assert fuzz.settle() == {**fuzz.base, "likes": fuzz.model.likes}
    if role != "overlay":
        assert seen["valid"] >= 5, f"only {seen['valid']} valid frames: the check is too weak"
