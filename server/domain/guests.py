"""The season's standing team of guests (the roster): what a guest record holds, its
rules, what the public may see of it, and a guest's record across episodes. Pure.

A guest may carry `contact` (how producers reach them): producers only, never in a
public view.
"""

import re
from dataclasses import dataclass, field, replace
from typing import Any

from . import LIMITS
from .fields import Fields
from .show import ShowState

GUEST_ID = re.compile(r"^g[1-9][0-9]{0,8}$")
# Where the guests come from (the article's "先锋工匠": state, private and foreign firms,
# a hospital, the lawyers' association, a charity, a park's party station; and the
# community and village secretaries of the episodes).
SECTORS = ("soe", "private", "foreign", "hospital", "law", "charity", "park", "community", "village", "gov", "other")


@dataclass(frozen=True, slots=True)
class GuestLimits:
    name: int = 40
    title: int = 60
    org: int = 80
    bio: int = 600
    topic: int = 30
    topics: int = 8
    contact: int = 120


GUEST_LIMITS = GuestLimits()


@dataclass(slots=True)
class Guest:
    id: str
    name: str
    title: str = ""
    org: str = ""
    sector: str = "other"
    bio: str = ""
    topics: list[str] = field(default_factory=list)
    contact: str = ""  # producers only
    photo: str = ""  # version of the stored photo; "" = none
    listed: bool = True  # on the public roster
    created: int = 0
    version: int = 0  # the store's, for compare-and-set

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "org": self.org,
            "sector": self.sector,
            "bio": self.bio,
            "topics": list(self.topics),
            "contact": self.contact,
            "photo": self.photo,
            "listed": self.listed,
            "created": self.created,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Guest":
        return cls(
            id=str(rec["id"]),
            name=str(rec.get("name", "")),
            title=str(rec.get("title", "")),
            org=str(rec.get("org", "")),
            sector=str(rec.get("sector", "other")),
            bio=str(rec.get("bio", "")),
            topics=[str(t) for t in rec.get("topics") or []],
            contact=str(rec.get("contact", "")),
            photo=str(rec.get("photo", "")),
            listed=bool(rec.get("listed", True)),
            created=int(rec.get("created", 0)),
            version=int(rec.get("version", 0)),
        )

    def public_view(self) -> dict[str, Any]:
        """What anyone may see: never `contact`."""
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "org": self.org,
            "sector": self.sector,
            "bio": self.bio,
            "topics": list(self.topics),
            "photo": self.photo or None,
        }


GUEST_FIELDS = ("name", "title", "org", "sector", "bio", "topics", "contact", "listed")


def read_topics(raw: Any) -> Any:
    """Topics as a list: a JSON list, or text with one topic per line (or separated by
    commas or 、)."""
    if isinstance(raw, str):
        return [t for t in re.split(r"[\n,，、;；]+", raw) if t.strip()]
    return raw


def check_guest(data: dict[str, Any], limits: GuestLimits = GUEST_LIMITS, partial: bool = False) -> dict[str, Any]:
    """The clean guest fields present in `data` (all of them unless `partial`);
    raises fields.Invalid naming every bad one."""
    f = Fields(data)
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = f.text("name", limits.name)
    for name, limit in (("title", limits.title), ("org", limits.org), ("contact", limits.contact)):
        if not partial or name in data:
            out[name] = f.text(name, limit, required=False)
    if not partial or "bio" in data:
        out["bio"] = f.text("bio", limits.bio, required=False, multiline=True)
    if not partial or "sector" in data:
        out["sector"] = f.choice("sector", SECTORS, default="other")
    if not partial or "listed" in data:
        out["listed"] = f.flag("listed", default=True)
    if not partial or "topics" in data:
        out["topics"] = _topics(f, limits)
    f.done()
    return out


def _topics(f: Fields, limits: GuestLimits) -> list[str]:
    raw = read_topics(f.data.get("topics"))
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > limits.topics:
        f.problem("topics", "topics", f"topics: at most {limits.topics}", n=limits.topics)
        return []
    out = []
    for item in raw:
        sub = Fields({"topics": item})
        text = sub.text("topics", limits.topic, required=False)
        if sub.problems:
            f.problem("topics", "topic_long", f"a topic has at most {limits.topic} characters", n=limits.topic)
            return []
        if text and text not in out:
            out.append(text)
    return out


def new_guest(gid: str, data: dict[str, Any], now: int, limits: GuestLimits = GUEST_LIMITS) -> Guest:
    return Guest(id=gid, created=now, **check_guest(data, limits))


def edit_guest(guest: Guest, data: dict[str, Any], limits: GuestLimits = GUEST_LIMITS) -> Guest:
    changes = check_guest({k: v for k, v in data.items() if k in GUEST_FIELDS}, limits, partial=True)
    return replace(guest, **changes)


# -- a guest's episodes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appearance:
    """One episode a roster guest took part in, with the result so far."""

    slug: str
    title: str
    date: str
    status: str
    side: str  # "a" or "b"
    opponent: str  # the other side's guest (or side name)
    rounds_won: int
    rounds_lost: int
    likes: int
    likes_share: float  # of both sides' likes, 0..1
    votes: int  # finished rounds' counted votes for this side
    vote_share: float | None  # of finished rounds' votes; None before any vote
    outcome: str  # "won", "lost", "tie" (ended episodes), "live", "upcoming"

    def view(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "date": self.date,
            "status": self.status,
            "side": self.side,
            "opponent": self.opponent,
            "rounds_won": self.rounds_won,
            "rounds_lost": self.rounds_lost,
            "likes": self.likes,
            "likes_share": round(self.likes_share, 4),
            "votes": self.votes,
            "vote_share": None if self.vote_share is None else round(self.vote_share, 4),
            "outcome": self.outcome,
        }


def appearance(state: ShowState, side: str) -> Appearance:
    other = "b" if side == "a" else "a"
    likes = state.counters.likes
    both = likes.get("a", 0) + likes.get("b", 0)
    votes = {s: sum(int(r.get("votes", {}).get(s, 0)) for r in state.rounds) for s in ("a", "b")}
    all_votes = votes["a"] + votes["b"]
    won, lost = state.rounds_won.get(side, 0), state.rounds_won.get(other, 0)
    if state.status == "ended":
        outcome = "won" if won > lost else "lost" if won < lost else "tie"
    else:
        outcome = "live" if state.status == "live" else "upcoming"
    them = state.sides.get(other) or {}
    return Appearance(
        slug=state.slug,
        title=state.title,
        date=state.date,
        status=state.status,
        side=side,
        opponent=them.get("guest") or them.get("name") or "",
        rounds_won=won,
        rounds_lost=lost,
        likes=likes.get(side, 0),
        likes_share=likes.get(side, 0) / both if both else 0.0,
        votes=votes[side],
        vote_share=votes[side] / all_votes if all_votes else None,
        outcome=outcome,
    )


def appearances(guest_id: str, shows: list[ShowState]) -> list[Appearance]:
    """The episodes a guest was picked for (from the roster), newest first."""
    out = [
        appearance(state, side)
        for state in shows
        for side in ("a", "b")
        if (state.sides.get(side) or {}).get("guest_id") == guest_id
    ]
    return sorted(out, key=lambda a: (a.date, a.slug), reverse=True)


ON_AIR_ORG = 16  # characters of a side's organisation line that fit the overlay's score bar


def side_from_guest(side: dict[str, Any], guest: Guest) -> dict[str, Any]:
    """An episode side whose guest comes from the roster: its name, and its organisation
    with the title ("澳洋医院党委副书记"), or the organisation alone when both would not
    fit the score bar's line."""
    sep = "" if guest.title and guest.title[0] >= "\u2e80" else " "
    org = sep.join(p for p in (guest.org, guest.title) if p)
    if len(org) > ON_AIR_ORG and guest.org:
        org = guest.org
    return {**side, "guest_id": guest.id, "guest": guest.name[: LIMITS.guest], "org": org[: LIMITS.org]}
