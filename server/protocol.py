"""The wire in one place: client message parsing, replies, frame encoding, and the
rule sheet the browser reads.

`docs/protocol.md` documents every frame. The browser does not keep a copy of
any list or limit: every page embeds `rules(settings)` as JSON and
`overlay/common/protocol.js` reads it from there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .domain import DEFAULT_COLORS, DEFAULT_SIDE_NAMES, SIDES, TextLimits
from .domain.integrity import REASONS
from .domain.questions import STATUSES as QUESTION_STATUSES
from .domain.rounds import MAX_DURATION_S, MIN_DURATION_S, ROUND_STATUSES
from .domain.show import MAX_POINTS
from .domain.verdict import HOLDERS, PHASES, STANCES

SERVER_TYPES = (
    "snapshot",
    "resumed",
    "tally",
    "question",
    "round",
    "show",
    "points",
    "mine",
    "ack",
    "error",
    "reload",
    "desk",
    "notice",
)
STATE_TYPES = ("snapshot", "resumed", "tally", "question", "round", "show", "points")
DISCRETE_TYPES = ("question", "round", "show", "points")
AUDIENCE_TYPES = ("hello", "like", "vote", "ask", "upvote", "stance", "questions.page")
MODERATION_TYPES = (
    "question.approve",
    "question.reject",
    "question.feature",
    "question.unfeature",
    "question.answered",
)
ROUND_TYPES = ("round.start", "round.pause", "round.resume", "round.end")
CONSOLE_TYPES = (
    "hello",
    *MODERATION_TYPES,
    "question.edit",
    *ROUND_TYPES,
    "show.end",
    "points.set",
    "device.ban",
    "device.unban",
    "overlay.reload",
    "overlay.rekey",
    "votes.release",
    "venue.add",
    "venue.remove",
    "stance.open",
    "stance.close",
    "floor.set",
    "question.merge",
    "question.split",
    "question.undo",
    "desk.focus",
    "questions.page",
)
CLIENT_TYPES = tuple(dict.fromkeys((*AUDIENCE_TYPES, *CONSOLE_TYPES)))
ERROR_CODES = ("invalid", "rate_limited", "forbidden", "not_found", "conflict", "too_large", "unavailable", "ended")
TRANSIENT_CODES = frozenset(("unavailable", "rate_limited"))  # worth retrying with the same id
ROLES = ("audience", "overlay", "console")
ROLE_TYPES = {"audience": frozenset(AUDIENCE_TYPES), "console": frozenset(CONSOLE_TYPES), "overlay": frozenset()}
CLOSE_CODES = {
    "policy": 1008,
    "too_large": 1009,
    "restart": 1012,
    "try_again": 1013,
    "unauthorized": 4401,
    "forbidden": 4403,
    "not_found": 4404,
}
FATAL_CLOSE_CODES = (4401, 4403, 4404)
MAX_COUNT = 50  # taps in one like frame
MAX_ID = 64
LIKE_BATCH_MS = 250  # phones send at most one like frame per side this often


class ProtocolError(Exception):
    """A message that cannot be carried out, answered with an `error` reply."""

    def __init__(self, code: str, message: str, msg_id: str | None = None, retry_ms: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.msg_id, self.retry_ms = code, message, msg_id, retry_ms

    def reply(self) -> "Reply":
        return Reply(self.msg_id, self.code, self.message, None, self.retry_ms)


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer to one message: an ack (`code` None) or an error.
    Bytes are made from it once, at the edge (`encode`)."""

    id: str | None
    code: str | None = None
    message: str = ""
    extra: dict[str, Any] | None = None  # an ack's extra fields, e.g. {"question": "q18"}
    retry_ms: int | None = None
    raw: bytes | None = None  # a remembered reply, sent again as it was

    @classmethod
    def remembered(cls, raw: bytes) -> "Reply":
        return cls(None, None, "", None, None, raw)

    @classmethod
    def ack(cls, msg_id: str | None, **extra: Any) -> "Reply":
        return cls(msg_id, None, "", extra or None)

    @property
    def ok(self) -> bool:
        return self.code is None

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.code is None:
            return orjson.dumps({"type": "ack", "id": self.id, **(self.extra or {})})
        frame: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_ms is not None:
            frame["retry_ms"] = self.retry_ms
        if self.id is not None:
            frame["id"] = self.id
        return orjson.dumps(frame)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~3 % of ingest at 10k frames/s
class Message:
    type: str
    id: str | None = None
    side: str = ""
    count: int = 0
    text: str = ""
    name: str = ""
    question: str = ""
    topic: str = ""
    duration_s: int = 0
    points: int = 0
    device: str = ""
    reason: str = ""
    network: str = ""
    phase: str = ""
    sealed: bool | None = None
    holder: str | None = None
    into: str = ""
    before: str = ""  # questions.page: the cursor ("" : the newest page)


def _str(data: dict[str, Any], key: str, msg_id: str | None, required: bool = True) -> str:
    value = data.get(key, None if required else "")
    if not isinstance(value, str):
        raise ProtocolError("invalid", f"{key} must be a string", msg_id)
    return value


def _int(data: dict[str, Any], key: str, msg_id: str | None) -> int:
    value = data.get(key)
    if type(value) is not int:  # bool is not a count
        raise ProtocolError("invalid", f"{key} must be an integer", msg_id)
    return value


def _side(data: dict[str, Any], msg_id: str | None) -> str:
    side = data.get("side")
    if side not in SIDES:
        raise ProtocolError("invalid", "side must be 'a' or 'b'", msg_id)
    return str(side)


def parse(raw: str, role: str) -> Message:
    """Validate one client frame for a role; raise ProtocolError with the client's id."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError("invalid", "not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid", "a message must be a JSON object")
    msg_id = data.get("id")
    if msg_id is not None and (not isinstance(msg_id, str) or not 1 <= len(msg_id) <= MAX_ID):
        raise ProtocolError("invalid", f"id must be a string of 1..{MAX_ID} characters")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError("invalid", "unknown message type", msg_id)
    if kind not in ROLE_TYPES[role]:  # guard: role check
        raise ProtocolError("forbidden", f"{role} may not send {kind}", msg_id)
    fields = _FIELDS.get(kind)
    return fields(kind, data, msg_id) if fields else Message(kind, msg_id)  # round.pause/resume/end, ...


def _like(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    count = _int(data, "count", msg_id)
    if not 1 <= count <= MAX_COUNT:
        raise ProtocolError("invalid", f"count must be 1..{MAX_COUNT}", msg_id)
    return Message(kind, msg_id, side=_side(data, msg_id), count=count)


def _vote(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, side=_side(data, msg_id))


def _ask(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    side = data.get("side")  # addressed to a side, or to both
    if side is not None and side not in SIDES:
        raise ProtocolError("invalid", "side must be 'a', 'b' or null (both)", msg_id)
    text, name = _str(data, "text", msg_id), _str(data, "name", msg_id, required=False)
    return Message(kind, msg_id, text=text, name=name, side=side or "")


def _hello(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, name=_str(data, "name", msg_id, required=False))


def _merge(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, question=_str(data, "question", msg_id), into=_str(data, "into", msg_id))


def _focus(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    question = data.get("question")
    if question is not None and (not isinstance(question, str) or len(question) > MAX_ID):
        raise ProtocolError("invalid", "question must be a question id or null", msg_id)
    return Message(kind, msg_id, question=question or "")


def _page(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    if msg_id is None:
        raise ProtocolError("invalid", "questions.page needs an id (its reply carries the page)")
    before = data.get("before")
    if before is not None and (not isinstance(before, str) or not 1 <= len(before) <= MAX_ID):
        raise ProtocolError("invalid", "before must be a question id (a page's `older`) or null", msg_id)
    return Message(kind, msg_id, before=before or "")


def _question(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, question=_str(data, "question", msg_id))


def _edit(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, question=_str(data, "question", msg_id), text=_str(data, "text", msg_id))


def _round_start(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    sealed = data.get("sealed")
    if sealed is not None and not isinstance(sealed, bool):
        raise ProtocolError("invalid", "sealed must be true or false", msg_id)
    # an empty topic, a duration of 0: the plan's for this round
    topic = _str(data, "topic", msg_id, required=False)
    duration = _int(data, "duration_s", msg_id) if "duration_s" in data else 0
    return Message(kind, msg_id, topic=topic, duration_s=duration, sealed=sealed)


def _stance(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    phase = data.get("phase")
    if phase not in PHASES:
        raise ProtocolError("invalid", "phase must be 'pre' or 'post'", msg_id)
    if kind != "stance":
        return Message(kind, msg_id, phase=phase)
    side = data.get("side")
    if side not in STANCES:
        raise ProtocolError("invalid", "side must be 'a', 'b' or 'u' (undecided)", msg_id)
    return Message(kind, msg_id, phase=phase, side=side)


def _floor(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    holder = data.get("holder")
    if holder is not None and holder not in HOLDERS:
        raise ProtocolError("invalid", "holder must be 'a', 'b', 'host' or null", msg_id)
    return Message(kind, msg_id, holder=holder)


def _device(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    device = _str(data, "device", msg_id)
    if not 1 <= len(device) <= 64:
        raise ProtocolError("invalid", "device must be a device id from a question", msg_id)
    return Message(kind, msg_id, device=device)


def _release(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    reason = data.get("reason", "")
    if reason not in ("", *REASONS):
        raise ProtocolError("invalid", f"reason must be one of {', '.join(REASONS)} (or empty: all)", msg_id)
    return Message(kind, msg_id, reason=reason)


def _venue(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    network = _str(data, "network", msg_id)
    if not 1 <= len(network) <= 64:
        raise ProtocolError("invalid", 'network must be a CIDR such as 10.20.0.0/16, or "here"', msg_id)
    return Message(kind, msg_id, network=network)


def _points(kind: str, data: dict[str, Any], msg_id: str | None) -> Message:
    return Message(kind, msg_id, side=_side(data, msg_id), points=_int(data, "points", msg_id))


# each message type's fields: type -> reader (types without fields are not here)
_FIELDS: dict[str, Callable[[str, dict[str, Any], str | None], Message]] = {
    "like": _like,
    "vote": _vote,
    "ask": _ask,
    "hello": _hello,
    "upvote": _question,
    "question.split": _question,
    "question.merge": _merge,
    "question.edit": _edit,
    "desk.focus": _focus,
    "questions.page": _page,
    **dict.fromkeys(MODERATION_TYPES, _question),
    "round.start": _round_start,
    **dict.fromkeys(("stance", "stance.open", "stance.close"), _stance),
    "floor.set": _floor,
    **dict.fromkeys(("device.ban", "device.unban"), _device),
    "votes.release": _release,
    **dict.fromkeys(("venue.add", "venue.remove"), _venue),
    "points.set": _points,
}


def frame_id(raw: str | None) -> str | None:
    """The `id` of a frame that will not be carried out, so that its refusal can name it."""
    try:
        msg_id = orjson.loads(raw)["id"] if raw else None
    except Exception:
        return None
    return msg_id if isinstance(msg_id, str) and 1 <= len(msg_id) <= MAX_ID else None


def encode(frame: dict[str, Any]) -> bytes:
    return orjson.dumps(frame)


def with_seq(seq: int, body: bytes) -> bytes:
    """Put `"seq": n` first into an encoded object, without encoding it again."""
    return b'{"seq":%d,%s' % (seq, body[1:])


def error(code: str, message: str, msg_id: str | None = None, **extra: Any) -> bytes:
    return Reply(msg_id, code, message, None, extra.get("retry_ms")).encode()


def rules(limits: TextLimits, floor_warn_share: float = 0.2) -> dict[str, Any]:
    """Everything the browser must agree with the server on, from one source."""
    return {
        "types": {
            "server": list(SERVER_TYPES),
            "client": list(CLIENT_TYPES),
            "state": list(STATE_TYPES),
            "discrete": list(DISCRETE_TYPES),
            "roles": {role: sorted(types, key=CLIENT_TYPES.index) for role, types in ROLE_TYPES.items()},
        },
        "errors": list(ERROR_CODES),
        "close": CLOSE_CODES,
        "fatal_close": list(FATAL_CLOSE_CODES),
        "sides": list(SIDES),
        "stances": list(STANCES),
        "phases": list(PHASES),
        "holders": list(HOLDERS),
        "colors": DEFAULT_COLORS,
        "side_names": DEFAULT_SIDE_NAMES,
        "round_statuses": list(ROUND_STATUSES),
        "question_statuses": list(QUESTION_STATUSES),
        "limits": {
            "questionChars": limits.question,
            "nameChars": limits.name,
            "topicChars": limits.topic,
            "titleChars": limits.title,
            "likeBatchMax": MAX_COUNT,
            "likeIntervalMs": LIKE_BATCH_MS,
            "floorWarnShare": floor_warn_share,
            "durationMin": MIN_DURATION_S,
            "durationMax": MAX_DURATION_S,
            "pointsMax": MAX_POINTS,
        },
    }
