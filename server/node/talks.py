"""Talks sent to the grassroots, as one process serves them: talk requests and
their workflow, talks (from scheduled requests or added directly), sign-ups for
public talks, the counts that flow back to the roster and the dashboard, and the
sweep that erases contact data `CONTACT_RETENTION_DAYS` after a request is done
or declined (and sign-ups' after their talk).

Contact data (a request's `contact`, `phone`, `notes`; a sign-up's `name`,
`phone`) leaves this module only through the producer calls (`invitations`,
`invitation`, `signups`); no public view, log line or metric carries it.
"""

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..domain import DomainError
from ..domain import invitations as dinv
from ..domain.invitations import Invitation, Talk
from ..settings import Settings
from ..store import Conflict, Store, StoreUnavailable
from ..store.season import SeasonStore
from .venues import Venues

log = logging.getLogger("leitai.season")
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def today() -> str:
    return time.strftime("%Y-%m-%d")


class Limited(Exception):
    """A budget is spent: try again after `retry_s`."""

    def __init__(self, retry_s: float, message: str = "too many, slow down") -> None:
        super().__init__(message)
        self.retry_s = retry_s


class Talks:
    def __init__(
        self,
        settings: Settings,
        store: SeasonStore,
        shows: Store,
        venues: Venues,
        known_guests: Callable[[], Awaitable[set[str]]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.shows = shows
        self.venues = venues
        self.known_guests = known_guests  # the roster's ids (node/season.py)
        self._key = hashlib.sha256(("leitai.signup:" + settings.resolved_secret()).encode()).digest()

    # -- requests ----------------------------------------------------------------------

    async def request(self, data: dict[str, Any], ip: str) -> Invitation:
        """A unit's talk request (public). A network may send `REQUESTS_PER_NETWORK` an hour."""
        clean = dinv.check_request(data, await self.known_guests())
        network = self.venues.network(ip)
        sent = await self.shows.count(f"requests:{network}", 3600)
        if sent > self.settings.requests_per_network:  # guard: request budget
            raise Limited(600, "too many requests from this network; try again later")
        inv = dinv.new_invitation(f"r{await self.store.next_id('invitation')}", clean, now_ms())
        inv.version = await self.store.put("invitation", inv.id, inv.record(), 0)
        return inv

    async def invitations(self) -> list[Invitation]:
        found = [Invitation.from_record(r) for r in await self.store.all("invitation")]
        return sorted(found, key=lambda i: i.created, reverse=True)

    async def invitation(self, iid: str) -> Invitation | None:
        if not dinv.INVITATION_ID.match(iid):
            return None
        rec = await self.store.get("invitation", iid)
        return Invitation.from_record(rec) if rec else None

    async def move(self, iid: str, data: dict[str, Any], by: str) -> Invitation:
        """A producer moves a request along its workflow; an impossible step, or a
        change to a request someone else changed meanwhile (`version`), is a conflict."""
        inv = await self.invitation(iid)
        if inv is None:
            raise DomainError("not_found", "no such request")
        seen = data.get("version")
        if isinstance(seen, (int, str)) and str(seen).isdigit() and int(seen) != inv.version:
            raise Conflict(f"invitation {iid} changed meanwhile")
        moved = dinv.transition(inv, data, by, now_ms(), await self.known_guests())
        moved.version = await self.store.put("invitation", iid, moved.record(), inv.version)
        return moved

    # -- talks --------------------------------------------------------------------------

    async def all(self) -> list[Talk]:
        """Every talk: those added directly and those scheduled from requests."""
        own = [Talk.from_record(r) for r in await self.store.all("talk")]
        made = [t for t in (dinv.talk_of(i) for i in await self.invitations()) if t is not None]
        return sorted([*own, *made], key=lambda t: (t.date, t.time, t.id))

    async def talk(self, tid: str) -> Talk | None:
        if not dinv.TALK_ID.match(tid):
            return None
        if tid.startswith("r"):
            inv = await self.invitation(tid)
            return dinv.talk_of(inv) if inv else None
        rec = await self.store.get("talk", tid)
        return Talk.from_record(rec) if rec else None

    async def add(self, data: dict[str, Any]) -> Talk:
        known = await self.known_guests()
        talk = dinv.check_talk("t0", data, known, now_ms())
        talk.id = f"t{await self.store.next_id('talk')}"
        talk.version = await self.store.put("talk", talk.id, talk.record(), 0)
        return talk

    async def change(self, tid: str, data: dict[str, Any]) -> Talk:
        """A change to a talk added directly (a request's talk moves with its request)."""
        talk = await self.talk(tid)
        if talk is None:
            raise DomainError("not_found", "no such talk")
        if tid.startswith("r"):
            raise DomainError("conflict", "this talk follows its request: change the request")
        changed = dinv.update_talk(talk, data)
        changed.version = await self.store.put("talk", tid, changed.record(), talk.version)
        return changed

    async def public(self) -> list[Talk]:
        """Public talks from today on (for the roster page and GET /api/talks)."""
        day = today()
        return [t for t in await self.all() if t.public and t.status == "scheduled" and t.date >= day]

    # -- sign-ups ------------------------------------------------------------------------

    def signup_key(self, tid: str, phone: str) -> str:
        return hmac.new(self._key, f"{tid}|{phone}".encode(), hashlib.sha256).hexdigest()[:20]

    async def sign_up(self, tid: str, data: dict[str, Any], ip: str) -> tuple[str, int, bool]:
        """(status "registered" or "waiting", place, new?) of a sign-up for a public talk."""
        talk = await self.talk(tid)
        if talk is None or not talk.public:
            raise DomainError("not_found", "no such talk")
        if talk.status != "scheduled" or talk.capacity <= 0 or talk.date < today():
            raise DomainError("conflict", "sign-up for this talk is closed")
        clean = dinv.check_signup(data)
        sent = await self.shows.count(f"signups:{self.venues.network(ip)}", 3600)
        if sent > self.settings.signups_per_network:  # guard: sign-up budget
            raise Limited(600, "too many sign-ups from this network; try again later")
        key = self.signup_key(tid, clean["phone"])
        new = await self.store.signup(tid, key, {**clean, "at": now_ms()})
        status, place = dinv.position(talk.capacity, await self.store.signups(tid), key)
        return status, place, new

    async def places(self, talk: Talk) -> dinv.Places:
        return dinv.places(talk.capacity, await self.store.signups(talk.id))

    async def signups(self, tid: str) -> list[dict[str, Any]]:
        """Producers only: every sign-up with its status and place."""
        talk = await self.talk(tid)
        if talk is None:
            return []
        rows = await self.store.signups(tid)
        out = []
        for row in rows:
            status, place = dinv.position(talk.capacity, rows, row["key"])
            out.append({**row, "status": status or "cancelled", "place": place})
        return out

    async def cancel_signup(self, tid: str, key: str) -> None:
        """A producer cancels a sign-up: the first on the waiting list moves up."""
        rows = {r["key"]: r for r in await self.store.signups(tid)}
        if key not in rows:
            raise DomainError("not_found", "no such sign-up")
        await self.store.put_signup(tid, key, {**rows[key], "cancelled": now_ms()})

    # -- counts that flow back ------------------------------------------------------------

    async def done_per_guest(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for talk in await self.all():
            if talk.status == "done":
                for gid in talk.guest_ids:
                    out[gid] = out.get(gid, 0) + 1
        return out

    async def of_guest(self, gid: str) -> dict[str, Any]:
        """A guest's talks as the public may see them: held ones and upcoming public ones
        (no unit named for a talk that was not public, no contact data anywhere)."""
        mine = [t for t in await self.all() if gid in t.guest_ids]
        done = [t for t in mine if t.status == "done"]
        upcoming = [t for t in mine if t.status == "scheduled" and t.public and t.date >= today()]
        return {
            "done": len(done),
            "attendance": sum(t.attendance for t in done),
            "list": [_talk_line(t) for t in reversed(done)][:20],
            "upcoming": [_talk_line(t) for t in upcoming],
        }

    async def counts(self) -> dict[str, Any]:
        """ "已送党课 N 次" and its neighbours."""
        talks = await self.all()
        requests = await self.invitations()
        by_status = {s: sum(1 for i in requests if i.status == s) for s in dinv.STATUSES}
        return {
            "lessons_done": sum(1 for t in talks if t.status == "done" and t.kind == "lesson"),
            "meets_done": sum(1 for t in talks if t.status == "done" and t.kind == "meet"),
            "attendance": sum(t.attendance for t in talks if t.status == "done"),
            "talks_scheduled": sum(1 for t in talks if t.status == "scheduled"),
            "requests": by_status,
        }

    # -- erasure ------------------------------------------------------------------------------

    async def sweep(self, now: int | None = None) -> int:
        """Erase the contact data that is past its time: of requests done or declined
        `CONTACT_RETENTION_DAYS` ago, of sign-ups that long after their talk. Returns how
        many records it erased; counts stay."""
        now = now if now is not None else now_ms()
        days = self.settings.contact_retention_days
        erased = 0
        for inv in await self.invitations():
            if dinv.due_for_erasure(inv, now, days * DAY_MS):  # guard: erasure
                try:
                    await self.store.put("invitation", inv.id, dinv.erase(inv, now).record(), inv.version)
                    erased += 1
                except Conflict:
                    pass  # changed meanwhile: the next sweep
        day = time.strftime("%Y-%m-%d", time.localtime(now / 1000))
        for talk in await self.all():
            if dinv.signup_erasable(talk, day, days):
                for row in await self.store.signups(talk.id):
                    if not row.get("erased"):
                        kept = {k: v for k, v in row.items() if k in ("at", "cancelled", "key")}
                        await self.store.put_signup(talk.id, row["key"], {**kept, "erased": now})
                        erased += 1
        if erased:
            log.info("erased the contact data of %d requests and sign-ups past their retention", erased)
        return erased

    async def sweeper(self) -> None:
        """The node task: sweep now, then every `SEASON_SWEEP_S`."""
        while True:
            try:
                await self.sweep()
            except StoreUnavailable:
                log.warning("the erasure sweep could not reach the store; it runs again later")
            except Exception:
                log.exception("the erasure sweep failed")
            await asyncio.sleep(max(0.05, self.settings.season_sweep_s))


def _talk_line(t: Talk) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "title": t.title,
        "date": t.date,
        "district": t.district,
        "attendance": t.attendance if t.status == "done" else None,
        "unit": t.unit if t.public else "",
        "place": t.place if t.public else "",
        "public": t.public,
    }
