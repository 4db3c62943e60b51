"""Season polls ("2017我最期待见面的书记", "我最喜欢的书记"): a poll's rules, its
status over time, ballots and results. Pure.

A device has one ballot per poll: the set of options it chose (at most `choices`),
stored as their ids joined with "," in `integrity.Ballot.side`, so a ballot obeys
exactly the rules of a round vote (counted or held: per-network budget, bursts of
new devices, declared venues) and a changed ballot keeps its status. Counts are
kept per ballot (the joined ids); `results` splits them per option.

`reveal` "close": while the poll is open its split is in no public view (`votes`
is null); the number of ballots is.
"""

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any

from . import DomainError
from .fields import ID, Fields
from .integrity import REASONS, VoteCounts

SLUG = re.compile(r"^[a-z0-9-]{1,40}$")
REVEALS = ("live", "close")
OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True, slots=True)
class PollLimits:
    title: int = 120
    label: int = 40
    options: int = 30
    note: int = 280


POLL_LIMITS = PollLimits()


@dataclass(slots=True)
class Poll:
    slug: str
    title: str
    options: list[dict[str, str]]  # {"id", "label"} (+ "guest": a roster id when the option is a guest)
    reveal: str = "live"
    choices: int = 1
    opens: int = 0  # ms; 0: from its creation
    closes: int = 0  # ms; 0: until a producer closes it
    closed: int = 0  # ms; when a producer closed it
    show: str = ""  # an episode whose declared venues count for the poll too
    note: str = ""  # a line under the title
    created: int = 0
    version: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "options": [dict(o) for o in self.options],
            "reveal": self.reveal,
            "choices": self.choices,
            "opens": self.opens,
            "closes": self.closes,
            "closed": self.closed,
            "show": self.show,
            "note": self.note,
            "created": self.created,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Poll":
        return cls(
            slug=str(rec["slug"]),
            title=str(rec.get("title", "")),
            options=[{str(k): str(v) for k, v in o.items()} for o in rec.get("options") or []],
            reveal=str(rec.get("reveal", "live")),
            choices=int(rec.get("choices", 1)),
            opens=int(rec.get("opens", 0)),
            closes=int(rec.get("closes", 0)),
            closed=int(rec.get("closed", 0)),
            show=str(rec.get("show", "")),
            note=str(rec.get("note", "")),
            created=int(rec.get("created", 0)),
            version=int(rec.get("version", 0)),
        )

    # -- time ----------------------------------------------------------------------

    def status(self, now: int) -> str:
        if self.closed and self.closed <= now:
            return CLOSED
        if self.closes and now >= self.closes:
            return CLOSED
        if now < self.opens:
            return CLOSED
        return OPEN

    def upcoming(self, now: int) -> bool:
        return now < self.opens and not self.closed

    def ended_at(self) -> int:
        """When it closed (or will), 0 if not known."""
        if self.closed and self.closes:
            return min(self.closed, self.closes)
        return self.closed or self.closes

    def revealed(self, now: int) -> bool:
        """May the public see the split now?"""
        return self.reveal == "live" or (self.status(now) == CLOSED and not self.upcoming(now))

    def option_ids(self) -> list[str]:
        return [o["id"] for o in self.options]


# -- creating ------------------------------------------------------------------------


def when(value: Any, tz: tzinfo | None) -> int | None:
    """A time as ms: epoch ms, or ISO 8601 ("2026-06-20T09:00", local to `tz` when
    it has no offset). None if it is neither; 0 for empty."""
    if value in (None, "", 0):
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz) if tz is not None else moment.astimezone()
        return int(moment.timestamp() * 1000)
    return None


def check_poll(data: dict[str, Any], now: int, tz: tzinfo | None = None, limits: PollLimits = POLL_LIMITS) -> Poll:
    """A new poll from submitted fields; raises fields.Invalid naming every bad one."""
    f = Fields(data)
    slug = data.get("slug")
    if not isinstance(slug, str) or not SLUG.match(slug):
        f.problem("slug", "slug", "slug must match [a-z0-9-]{1,40}")
        slug = ""
    title = f.text("title", limits.title)
    note = f.text("note", limits.note, required=False)
    reveal = f.choice("reveal", REVEALS, default="live")
    options = _options(f, data.get("options"), limits)
    choices = f.integer("choices", 1, max(1, len(options)), default=1)
    opens, closes = _times(f, data, tz)
    show = data.get("show") or ""
    if not isinstance(show, str) or (show and not SLUG.match(show)):
        f.problem("show", "choice", "show must be an episode's slug")
        show = ""
    f.done()
    return Poll(slug, title, options, reveal, choices, opens or 0, closes or 0, 0, show, note, now)


def _options(f: Fields, raw: Any, limits: PollLimits) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= limits.options:
        f.problem("options", "options", f"options: 2 to {limits.options}", lo=2, hi=limits.options)
        return []
    out: list[dict[str, str]] = []
    for i, item in enumerate(raw, 1):
        if isinstance(item, str):
            item = {"id": f"o{i}", "label": item}
        if not isinstance(item, dict):
            f.problem("options", "options", "each option is {id, label}", lo=2, hi=limits.options)
            return []
        oid = item.get("id") or f"o{i}"
        sub = Fields(item)
        label = sub.text("label", limits.label, required=False)
        if not isinstance(oid, str) or not ID.match(oid) or sub.problems:
            f.problem(
                "options",
                "option",
                f"option {i}: an id [a-z0-9-] and a label of at most {limits.label}",
                n=i,
                max=limits.label,
            )
            return []
        option = {"id": oid, "label": label}
        if isinstance(item.get("guest"), str) and item["guest"]:
            option["guest"] = item["guest"]
        out.append(option)
    if len({o["id"] for o in out}) != len(out):
        f.problem("options", "option_twice", "two options have the same id")
    return out


def _times(f: Fields, data: dict[str, Any], tz: tzinfo | None) -> tuple[int, int]:
    opens = when(data.get("opens"), tz)
    closes = when(data.get("closes"), tz)
    if opens is None:
        f.problem("opens", "when", "opens must be a time (ISO 8601 or epoch ms)")
    if closes is None:
        f.problem("closes", "when", "closes must be a time (ISO 8601 or epoch ms)")
    if opens and closes and closes <= opens:
        f.problem("closes", "order", "closes must be after opens")
    return opens or 0, closes or 0


def close(poll: Poll, now: int) -> Poll:
    if poll.status(now) == CLOSED and not poll.upcoming(now):
        raise DomainError("conflict", "the poll is closed already")
    return replace(poll, closed=now)


def reopen(poll: Poll, now: int, closes: int = 0) -> Poll:
    """Open a closed poll again (until `closes`, or until closed by hand)."""
    if poll.status(now) == OPEN:
        raise DomainError("conflict", "the poll is open")
    if closes and closes <= now:
        raise DomainError("invalid", "closes must be in the future", "closes")
    return replace(poll, closed=0, closes=closes, opens=min(poll.opens, now))


# -- ballots -------------------------------------------------------------------------


def ballot_choice(poll: Poll, chosen: Any, now: int) -> str:
    """The stored form of a device's choice ("g1,g3"), after the poll's rules:
    open, known options, at least one and at most `choices`, each once."""
    if poll.status(now) != OPEN:  # guard: closed poll
        raise DomainError("conflict", "this poll is closed" if not poll.upcoming(now) else "this poll is not open yet")
    if isinstance(chosen, str):
        chosen = [chosen]
    if not isinstance(chosen, list) or not chosen or not all(isinstance(c, str) for c in chosen):
        raise DomainError("invalid", "choose an option", "option")
    known = set(poll.option_ids())
    if any(c not in known for c in chosen):
        raise DomainError("invalid", "no such option", "option")
    if len(set(chosen)) != len(chosen):
        raise DomainError("invalid", "an option was chosen twice", "option")
    if len(chosen) > poll.choices:
        raise DomainError("invalid", f"at most {poll.choices} choices", "option")
    order = poll.option_ids()
    return ",".join(sorted(chosen, key=order.index))


@dataclass(slots=True)
class Results:
    """A poll's counts per option: counted and held, and the ballots behind them."""

    counted: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    ballots: int = 0  # counted ballots (devices)
    held_ballots: int = 0

    def share(self, oid: str) -> float:
        total = sum(self.counted.values())
        return self.counted.get(oid, 0) / total if total else 0.0


def results(poll: Poll, counts: VoteCounts) -> Results:
    out = Results({o: 0 for o in poll.option_ids()}, {o: 0 for o in poll.option_ids()})
    for choice, n in counts.counted.items():
        if n > 0:
            out.ballots += n
            for oid in choice.split(","):
                if oid in out.counted:
                    out.counted[oid] += n
    for choice, n in counts.held.items():
        if n > 0:
            out.held_ballots += n
            for oid in choice.split(","):
                if oid in out.held:
                    out.held[oid] += n
    out.reasons = {r: max(0, counts.reasons.get(r, 0)) for r in REASONS}
    return out


def standing(poll: Poll, res: Results) -> list[tuple[int, dict[str, str], int]]:
    """(rank, option, votes), most votes first; equal votes share a rank."""
    rows = sorted(poll.options, key=lambda o: (-res.counted.get(o["id"], 0), poll.options.index(o)))
    out: list[tuple[int, dict[str, str], int]] = []
    for i, option in enumerate(rows):
        votes = res.counted.get(option["id"], 0)
        rank = out[-1][0] if out and out[-1][2] == votes else i + 1
        out.append((rank, option, votes))
    return out


def public_view(poll: Poll, res: Results, now: int) -> dict[str, Any]:
    """GET /api/polls/{poll}: `votes` is null on every option while the split is hidden."""
    shown = poll.revealed(now)  # guard: sealed poll
    return {
        "slug": poll.slug,
        "title": poll.title,
        "note": poll.note,
        "status": poll.status(now),
        "upcoming": poll.upcoming(now),
        "reveal": poll.reveal,
        "revealed": shown,
        "choices": poll.choices,
        "opens": poll.opens or poll.created,
        "closes": poll.ended_at() or None,
        "options": [
            {
                "id": o["id"],
                "label": o["label"],
                "guest": o.get("guest") or None,
                "votes": res.counted.get(o["id"], 0) if shown else None,
            }
            for o in poll.options
        ],
        "ballots": res.ballots,
    }


def producer_view(poll: Poll, res: Results, now: int) -> dict[str, Any]:
    """The same with every split, the held ballots and why they were held."""
    view = public_view(poll, res, now)
    for option in view["options"]:
        option["votes"] = res.counted.get(option["id"], 0)
        option["held"] = res.held.get(option["id"], 0)
    view.update(held_ballots=res.held_ballots, held_reasons=dict(res.reasons), show=poll.show)
    return view
