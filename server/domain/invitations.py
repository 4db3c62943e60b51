"""Talks sent to the grassroots (O2O, "先锋党课送基层", "书记来了"): a unit's request
for a guest to teach on site, its workflow, and the talks it leads to. Pure.

    new → contacted → scheduled → done
    declined from any state before done (with a reason)

A scheduled request may be scheduled again (a new date or place). Every change is
kept in `history` with who made it and when. `contact`, `phone` and `notes` are
the requester's contact data: producers only, and erased `retention` days after
the request is done or declined (`erase`), leaving everything that counts.

A *talk* is a scheduled or held session: each scheduled request makes one (its id
is the request's), and producers add others directly (a "书记来了" meeting, or a
talk held before Leitai). A talk may be public, with a sign-up page (capacity,
then a waiting list).
"""

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from . import DomainError
from .fields import Fields, masked_mobile, read_mobile

NEW, CONTACTED, SCHEDULED, DONE, DECLINED = "new", "contacted", "scheduled", "done", "declined"
STATUSES = (NEW, CONTACTED, SCHEDULED, DONE, DECLINED)
NEXT = {NEW: (CONTACTED, DECLINED), CONTACTED: (SCHEDULED, DECLINED), SCHEDULED: (SCHEDULED, DONE, DECLINED)}
UNIT_TYPES = (
    "gov",
    "institution",
    "soe",
    "private",
    "foreign",
    "social",
    "community",
    "village",
    "park",
    "school",
    "hospital",
    "other",
)
INVITATION_ID = re.compile(r"^r[1-9][0-9]{0,8}$")
TALK_ID = re.compile(r"^[rt][1-9][0-9]{0,8}$")
KINDS = ("lesson", "meet")  # 党课 (a lesson for a unit) or 书记来了 (a meeting open to the public)
TALK_STATUSES = ("scheduled", "done", "cancelled")


@dataclass(frozen=True, slots=True)
class InviteLimits:
    unit: int = 80
    district: int = 40
    contact: int = 40
    topic: int = 120
    dates: int = 80
    notes: int = 500
    audience: int = 100_000
    place: int = 120
    reason: int = 280
    note: int = 280
    guests: int = 5
    capacity: int = 100_000
    by: int = 40


INVITE_LIMITS = InviteLimits()


@dataclass(slots=True)
class Invitation:
    id: str
    unit: str
    unit_type: str
    district: str
    contact: str  # producers only; erased after the retention period
    phone: str  # producers only; erased after the retention period
    guest_ids: list[str]  # wished-for guests; empty: any
    topic: str
    audience: int
    dates: str
    notes: str = ""  # producers only; erased with the contact
    status: str = NEW
    created: int = 0
    closed: int = 0  # ms when it became done or declined
    erased: int = 0  # ms when its contact data was erased
    schedule: dict[str, Any] = field(default_factory=dict)  # date, time, place, guest_id, public, capacity
    outcome: dict[str, Any] = field(default_factory=dict)  # done: attendance, note; declined: reason
    history: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit": self.unit,
            "unit_type": self.unit_type,
            "district": self.district,
            "contact": self.contact,
            "phone": self.phone,
            "guest_ids": list(self.guest_ids),
            "topic": self.topic,
            "audience": self.audience,
            "dates": self.dates,
            "notes": self.notes,
            "status": self.status,
            "created": self.created,
            "closed": self.closed,
            "erased": self.erased,
            "schedule": dict(self.schedule),
            "outcome": dict(self.outcome),
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Invitation":
        return cls(
            id=str(rec["id"]),
            unit=str(rec.get("unit", "")),
            unit_type=str(rec.get("unit_type", "other")),
            district=str(rec.get("district", "")),
            contact=str(rec.get("contact", "")),
            phone=str(rec.get("phone", "")),
            guest_ids=[str(g) for g in rec.get("guest_ids") or []],
            topic=str(rec.get("topic", "")),
            audience=int(rec.get("audience", 0)),
            dates=str(rec.get("dates", "")),
            notes=str(rec.get("notes", "")),
            status=str(rec.get("status", NEW)),
            created=int(rec.get("created", 0)),
            closed=int(rec.get("closed", 0)),
            erased=int(rec.get("erased", 0)),
            schedule=dict(rec.get("schedule") or {}),
            outcome=dict(rec.get("outcome") or {}),
            history=[dict(h) for h in rec.get("history") or []],
            version=int(rec.get("version", 0)),
        )

    def producer_view(self) -> dict[str, Any]:
        """GET /api/invitations (signed in): everything, contact data included."""
        return {**self.record(), "phone_masked": masked_mobile(self.phone) if self.phone else ""}


# -- a request comes in ----------------------------------------------------------------


def check_request(data: dict[str, Any], known_guests: set[str], limits: InviteLimits = INVITE_LIMITS) -> dict[str, Any]:
    """The clean fields of a talk request; raises fields.Invalid naming every bad one
    (`consent` must be exactly true)."""
    f = Fields(data)
    out: dict[str, Any] = {
        "unit": f.text("unit", limits.unit),
        "unit_type": f.choice("unit_type", UNIT_TYPES),
        "district": f.text("district", limits.district),
        "contact": f.text("contact", limits.contact),
        "phone": read_mobile(f, "phone"),
        "guest_ids": _wished(f, data, known_guests, limits),
        "topic": f.text("topic", limits.topic),
        "audience": f.integer("audience", 1, limits.audience),
        "dates": f.text("dates", limits.dates),
        "notes": f.text("notes", limits.notes, required=False, multiline=True),
    }
    if data.get("consent") is not True:
        f.problem("consent", "consent", "consent must be true: the contact data is used only to arrange the talk")
    f.done()
    return out


def _wished(f: Fields, data: dict[str, Any], known: set[str], limits: InviteLimits) -> list[str]:
    """`guest_id` (one, SPEC) or `guest_ids` (several); absent, null or "any": any guest."""
    raw = data.get("guest_ids", data.get("guest_id"))
    if raw in (None, "", "any"):
        return []
    wished = [raw] if isinstance(raw, str) else raw
    if not isinstance(wished, list) or not all(isinstance(g, str) for g in wished):
        f.problem("guest_id", "choice", 'guest_id must be a guest\'s id or "any"')
        return []
    wished = [g for g in dict.fromkeys(wished) if g != "any"]
    if len(wished) > limits.guests:
        f.problem("guest_id", "guests", f"at most {limits.guests} guests", n=limits.guests)
        return []
    if any(g not in known for g in wished):
        f.problem("guest_id", "choice", 'guest_id must be a guest\'s id or "any"')
        return []
    return wished


def new_invitation(iid: str, clean: dict[str, Any], now: int) -> Invitation:
    inv = Invitation(id=iid, created=now, **clean)
    inv.history.append({"at": now, "by": "", "to": NEW})
    return inv


# -- the workflow ----------------------------------------------------------------------


def transition(
    inv: Invitation,
    data: dict[str, Any],
    by: str,
    now: int,
    known_guests: set[str],
    limits: InviteLimits = INVITE_LIMITS,
) -> Invitation:
    """The request after a producer's change of status (`data["status"]` with the fields
    that status needs). An impossible transition raises DomainError("conflict");
    missing or bad fields raise fields.Invalid."""
    to = data.get("status")
    if to not in STATUSES or to == NEW:
        raise DomainError("invalid", "status must be contacted, scheduled, done or declined", "status")
    if to not in NEXT.get(inv.status, ()):  # guard: workflow
        raise DomainError("conflict", f"a {inv.status} request cannot become {to}", "status")
    f = Fields(data)
    entry: dict[str, Any] = {"at": now, "by": by, "from": inv.status, "to": to}
    changes: dict[str, Any] = {"status": to}
    if to == CONTACTED:
        entry["note"] = f.text("note", limits.note, required=False)
    elif to == SCHEDULED:
        changes["schedule"] = entry["schedule"] = _schedule(f, known_guests, limits)
    elif to == DONE:
        changes["outcome"] = entry["outcome"] = {
            "attendance": f.integer("attendance", 0, limits.audience),
            "note": f.text("note", limits.note, required=False),
        }
        changes["closed"] = now
    else:  # declined
        changes["outcome"] = entry["outcome"] = {"reason": f.text("reason", limits.reason)}
        changes["closed"] = now
    f.done()
    return replace(inv, history=[*inv.history, entry], **changes)


def _schedule(f: Fields, known_guests: set[str], limits: InviteLimits) -> dict[str, Any]:
    guest = f.data.get("guest_id")
    if guest not in known_guests:
        f.problem("guest_id", "required" if guest in (None, "") else "choice", "guest_id: the confirmed guest")
    return {
        "date": f.day("date"),
        "time": f.clock("time"),
        "place": f.text("place", limits.place),
        "guest_id": guest if isinstance(guest, str) else "",
        "public": f.flag("public"),
        "capacity": f.integer("capacity", 0, limits.capacity, default=0),
        "title": f.text("title", limits.topic, required=False),
    }


def due_for_erasure(inv: Invitation, now: int, retention_ms: int) -> bool:
    return inv.status in (DONE, DECLINED) and not inv.erased and bool(inv.closed) and now - inv.closed >= retention_ms


def erase(inv: Invitation, now: int) -> Invitation:
    """The request without its contact data (name, number, notes): counts stay."""
    return replace(inv, contact="", phone="", notes="", erased=now)


# -- talks -------------------------------------------------------------------------------


@dataclass(slots=True)
class Talk:
    id: str  # a request's id (r…) or a talk's own (t…)
    kind: str  # "lesson" or "meet"
    title: str
    guest_ids: list[str]
    date: str
    time: str = ""
    place: str = ""
    district: str = ""
    unit: str = ""
    status: str = "scheduled"
    public: bool = False
    capacity: int = 0  # 0: no sign-up
    attendance: int = 0
    note: str = ""
    created: int = 0
    version: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "guest_ids": list(self.guest_ids),
            "date": self.date,
            "time": self.time,
            "place": self.place,
            "district": self.district,
            "unit": self.unit,
            "status": self.status,
            "public": self.public,
            "capacity": self.capacity,
            "attendance": self.attendance,
            "note": self.note,
            "created": self.created,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Talk":
        return cls(
            id=str(rec["id"]),
            kind=str(rec.get("kind", "lesson")),
            title=str(rec.get("title", "")),
            guest_ids=[str(g) for g in rec.get("guest_ids") or []],
            date=str(rec.get("date", "")),
            time=str(rec.get("time", "")),
            place=str(rec.get("place", "")),
            district=str(rec.get("district", "")),
            unit=str(rec.get("unit", "")),
            status=str(rec.get("status", "scheduled")),
            public=bool(rec.get("public", False)),
            capacity=int(rec.get("capacity", 0)),
            attendance=int(rec.get("attendance", 0)),
            note=str(rec.get("note", "")),
            created=int(rec.get("created", 0)),
            version=int(rec.get("version", 0)),
        )

    def public_view(self) -> dict[str, Any]:
        """A public talk as anyone sees it (no contact data: a talk holds none)."""
        out = self.record()
        del out["note"]
        return out


def talk_of(inv: Invitation) -> Talk | None:
    """The talk a scheduled (or done) request stands for."""
    if inv.status not in (SCHEDULED, DONE) and not (inv.status == DECLINED and inv.schedule):
        return None
    s = inv.schedule
    status = {SCHEDULED: "scheduled", DONE: "done"}.get(inv.status, "cancelled")
    return Talk(
        id=inv.id,
        kind="lesson",
        title=str(s.get("title") or inv.topic),
        guest_ids=[str(s.get("guest_id"))] if s.get("guest_id") else [],
        date=str(s.get("date", "")),
        time=str(s.get("time", "")),
        place=str(s.get("place", "")),
        district=inv.district,
        unit=inv.unit,
        status=status,
        public=bool(s.get("public")),
        capacity=int(s.get("capacity") or 0),
        attendance=int(inv.outcome.get("attendance", 0)) if inv.status == DONE else 0,
        note=str(inv.outcome.get("note", "")) if inv.status == DONE else "",
        created=inv.created,
        version=inv.version,
    )


def check_talk(
    tid: str, data: dict[str, Any], known_guests: set[str], now: int, limits: InviteLimits = INVITE_LIMITS
) -> Talk:
    """A talk producers add directly; raises fields.Invalid naming every bad field."""
    f = Fields(data)
    raw = data.get("guest_ids")
    guests = [raw] if isinstance(raw, str) and raw else raw if isinstance(raw, list) else []
    if not guests or not all(isinstance(g, str) and g in known_guests for g in guests):
        f.problem("guest_ids", "required" if not guests else "choice", "guest_ids: one or more roster guests")
    talk = Talk(
        id=tid,
        kind=f.choice("kind", KINDS, default="meet"),
        title=f.text("title", limits.topic),
        guest_ids=[g for g in guests if isinstance(g, str)][: limits.guests],
        date=f.day("date"),
        time=f.clock("time"),
        place=f.text("place", limits.place),
        district=f.text("district", limits.district, required=False),
        unit=f.text("unit", limits.unit, required=False),
        status=f.choice("status", TALK_STATUSES, default="scheduled"),
        public=f.flag("public"),
        capacity=f.integer("capacity", 0, limits.capacity, default=0),
        attendance=f.integer("attendance", 0, limits.audience, default=0),
        note=f.text("note", limits.note, required=False),
        created=now,
    )
    f.done()
    return talk


def update_talk(talk: Talk, data: dict[str, Any], limits: InviteLimits = INVITE_LIMITS) -> Talk:
    """A producer's change to a talk of its own: its status (done with attendance, or
    cancelled), whether it is public, its capacity."""
    if talk.status != "scheduled" and data.get("status") not in (None, talk.status):
        raise DomainError("conflict", f"a {talk.status} talk cannot change", "status")
    f = Fields(data)
    status = f.choice("status", TALK_STATUSES, default=talk.status)
    public = f.flag("public", default=talk.public)
    capacity = f.integer("capacity", 0, limits.capacity, default=talk.capacity)
    attendance = f.integer("attendance", 0, limits.audience, default=talk.attendance)
    note = f.text("note", limits.note, required=False) if "note" in data else talk.note
    f.done()
    return replace(talk, status=status, public=public, capacity=capacity, attendance=attendance, note=note)


# -- sign-ups for a public talk -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Places:
    registered: int
    waiting: int
    capacity: int

    @property
    def left(self) -> int:
        return max(0, self.capacity - self.registered)


def places(capacity: int, signups: list[dict[str, Any]]) -> Places:
    """Active sign-ups in order: the first `capacity` have a place, the rest wait."""
    active = sum(1 for s in signups if not s.get("cancelled"))
    return Places(min(active, capacity), max(0, active - capacity), capacity)


def position(capacity: int, signups: list[dict[str, Any]], key: str) -> tuple[str, int]:
    """("registered", n) or ("waiting", n) of one sign-up (1-based), or ("", 0)."""
    n = 0
    for s in signups:
        if s.get("cancelled"):
            continue
        n += 1
        if s.get("key") == key:
            return ("registered", n) if n <= capacity else ("waiting", n - capacity)
    return "", 0


def check_signup(data: dict[str, Any], limits: InviteLimits = INVITE_LIMITS) -> dict[str, Any]:
    f = Fields(data)
    out = {"name": f.text("name", limits.contact), "phone": read_mobile(f, "phone")}
    if data.get("consent") is not True:
        f.problem("consent", "consent", "consent must be true: the number is used only for this event")
    f.done()
    return out


def signup_erasable(talk: Talk, today: str, retention_days: int) -> bool:
    """A talk's sign-ups may lose their contact data once the talk is over (done or
    cancelled, or its day passed) and the retention period after its day has passed."""
    try:
        day = date.fromisoformat(talk.date)
    except ValueError:
        return talk.status != "scheduled"
    return (day + timedelta(days=retention_days)).isoformat() <= today and (
        talk.status != "scheduled" or talk.date < today
    )
