"""The season, as one process serves it: the guest roster and its photos, season
polls and their ballots, and (through `Talks`, node/talks.py) talk requests, talks
and sign-ups. The edge calls these; the rules are in domain/guests.py,
domain/polls.py and domain/invitations.py, the data in the season store.

Ballots of a poll obey the rules of round votes (domain.integrity): a device
budget (`POLL_VOTE_RATE`), the per-network budget and bursts of new devices
(held, kept, releasable), declared venues (`VENUE_NETWORKS`, and those of the
episode the poll belongs to).
"""

import asyncio
import hashlib
import logging
import time
from datetime import tzinfo
from typing import Any

from ..domain import DomainError
from ..domain import guests as dguests
from ..domain import polls as dpolls
from ..domain.fields import Invalid
from ..domain.guests import Guest
from ..domain.integrity import Ballot, Voter
from ..domain.polls import Poll, Results
from ..domain.show import ShowState
from ..settings import Settings
from ..store import Store
from ..store.season import SeasonStore
from .talks import Limited, Talks
from .tasks import Tasks
from .venues import Venues

log = logging.getLogger("leitai.season")

RESULTS_TTL_S = 1.0  # poll results a process reuses before reading them again
SHOWS_TTL_S = 2.0  # the episodes (for guests' records) a process reuses


def now_ms() -> int:
    return int(time.time() * 1000)


def make_season_store(settings: Settings) -> SeasonStore:
    """The season store of the mode: embedded, or Redis (imported only when used)."""
    if settings.redis_url:
        from ..store.season_redis import RedisSeasonStore

        return RedisSeasonStore(settings)
    from ..store.season_embedded import EmbeddedSeasonStore

    return EmbeddedSeasonStore(settings)


def photo_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"no {what}")


class Season:
    def __init__(self, settings: Settings, store: SeasonStore, shows: Store, venues: Venues, tasks: Tasks) -> None:
        self.settings = settings
        self.store = store
        self.shows = shows
        store.state_check = shows.writable  # a state the show store found lost is the season's too
        self.venues = venues
        self.tasks = tasks
        self.talks = Talks(settings, store, shows, venues, self.known_guests)
        self._results: dict[str, tuple[float, Results]] = {}
        self._episodes: tuple[float, list[ShowState]] = (0.0, [])

    async def start(self) -> None:
        await self.store.start()
        self.tasks.spawn(self.talks.sweeper(), "leitai-season-sweep")

    async def stop(self) -> None:
        await self.store.close()

    # -- guests ----------------------------------------------------------------------

    async def guests(self, listed_only: bool = False) -> list[Guest]:
        found = [Guest.from_record(r) for r in await self.store.all("guest")]
        found.sort(key=lambda g: (g.created, int(g.id[1:]) if g.id[1:].isdigit() else 0))
        return [g for g in found if g.listed] if listed_only else found

    async def guest(self, gid: str) -> Guest | None:
        if not dguests.GUEST_ID.match(gid):
            return None
        rec = await self.store.get("guest", gid)
        return Guest.from_record(rec) if rec else None

    async def known_guests(self) -> set[str]:
        return {g.id for g in await self.guests()}

    async def create_guest(self, data: dict[str, Any]) -> Guest:
        clean = dguests.check_guest(data)  # before taking an id: a bad form costs nothing
        guest = Guest(id=f"g{await self.store.next_id('guest')}", created=now_ms(), **clean)
        guest.version = await self.store.put("guest", guest.id, guest.record(), 0)
        return guest

    async def edit_guest(self, gid: str, data: dict[str, Any]) -> Guest:
        guest = await self.guest(gid)
        if guest is None:
            raise not_found("guest")
        changed = dguests.edit_guest(guest, data)
        changed.version = await self.store.put("guest", gid, changed.record(), guest.version)
        return changed

    async def set_photo(self, gid: str, jpeg: bytes) -> Guest:
        """Keep a checked, re-encoded photo (web/photos.py) and point the guest at it."""
        guest = await self.guest(gid)
        if guest is None:
            raise not_found("guest")
        await self.store.put_blob(f"photo:{gid}", jpeg)
        guest.photo = photo_version(jpeg)
        guest.version = await self.store.put("guest", gid, guest.record(), guest.version)
        return guest

    async def photo(self, gid: str) -> tuple[bytes, str] | None:
        """A guest's photo and its version (a hash of its bytes)."""
        if not dguests.GUEST_ID.match(gid):
            return None
        data = await self.store.blob(f"photo:{gid}")
        return (data, photo_version(data)) if data else None

    async def with_guests(self, sides: Any) -> Any:
        """Episode sides whose `guest_id` names a roster guest get their guest from the
        roster (name, organisation); a side without one keeps its free text."""
        if not isinstance(sides, dict):
            return sides
        out = dict(sides)
        for key, side in sides.items():
            if not isinstance(side, dict) or not side.get("guest_id"):
                if isinstance(side, dict) and "guest_id" in side:
                    out[key] = {k: v for k, v in side.items() if k != "guest_id"}
                continue
            gid = side["guest_id"]
            guest = await self.guest(gid) if isinstance(gid, str) else None
            if guest is None:
                raise DomainError("invalid", f"sides.{key}.guest_id: no such guest", f"sides.{key}.guest_id")
            out[key] = dguests.side_from_guest(side, guest)
        return out

    async def episodes(self) -> list[ShowState]:
        """Every episode with its counters (reused for a moment while no episode was
        added: pages ask often)."""
        at, states = self._episodes
        slugs = await self.shows.list_shows()
        if time.monotonic() - at < SHOWS_TTL_S and len(slugs) == len(states):
            return states
        loaded = await asyncio.gather(*(self.shows.load(s) for s in slugs))
        states = [s for s in loaded if s is not None]
        self._episodes = (time.monotonic(), states)
        return states

    async def roster(self) -> list[dict[str, Any]]:
        """GET /api/guests: listed guests with their episodes and talks counted; never
        contact data."""
        guests = await self.guests(listed_only=True)
        episodes = await self.episodes()
        talks = await self.talks.done_per_guest()
        return [
            {
                **g.public_view(),  # guard: public guest view
                "episodes": len(dguests.appearances(g.id, episodes)),
                "talks": talks.get(g.id, 0),
            }
            for g in guests
        ]

    async def profile(self, gid: str) -> dict[str, Any] | None:
        """A listed guest's public record: episodes with results, poll standing, talks."""
        guest = await self.guest(gid)
        if guest is None or not guest.listed:
            return None
        shown = dguests.appearances(gid, await self.episodes())
        return {
            "guest": guest.public_view(),
            "episodes": [a.view() for a in shown],
            "totals": {
                "episodes": len(shown),
                "rounds_won": sum(a.rounds_won for a in shown),
                "likes": sum(a.likes for a in shown),
                "won": sum(1 for a in shown if a.outcome == "won"),
            },
            "polls": await self.standings(gid),
            "talks": await self.talks.of_guest(gid),
        }

    # -- polls -----------------------------------------------------------------------

    async def polls(self) -> list[Poll]:
        found = [Poll.from_record(r) for r in await self.store.all("poll")]
        return sorted(found, key=lambda p: p.created, reverse=True)

    async def poll(self, slug: str) -> Poll | None:
        if not dpolls.SLUG.match(slug):
            return None
        rec = await self.store.get("poll", slug)
        return Poll.from_record(rec) if rec else None

    async def open_poll(self) -> Poll | None:
        """The newest poll open now (for the audience's path and the roster)."""
        now = now_ms()
        return next((p for p in await self.polls() if p.status(now) == dpolls.OPEN), None)

    async def create_poll(self, data: dict[str, Any], tz: tzinfo | None = None) -> Poll:
        poll = dpolls.check_poll(data, now_ms(), tz)
        roster = {g.id: g for g in await self.guests()}
        problems = []
        for option in poll.options:
            guest = roster.get(option.get("guest") or option["id"])
            if guest is not None:
                option["guest"] = guest.id
                option["label"] = option["label"] or guest.name
            elif option.get("guest") or dguests.GUEST_ID.match(option["id"]):
                problems.append(DomainError("invalid", f"no guest {option['id']}", "options", "option_guest"))
            elif not option["label"]:
                problems.append(DomainError("invalid", "an option needs a label", "options", "option_label"))
        if poll.show and await self.shows.load(poll.show) is None:
            problems.append(DomainError("invalid", "no such episode", "show", "choice"))
        if problems:
            raise Invalid(problems)
        poll.version = await self.store.put("poll", poll.slug, poll.record(), 0)
        return poll

    async def results(self, poll: Poll) -> Results:
        cached = self._results.get(poll.slug)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        res = dpolls.results(poll, await self.store.poll_counts(poll.slug))
        if len(self._results) > 256:
            self._results.clear()
        self._results[poll.slug] = (time.monotonic() + RESULTS_TTL_S, res)
        return res

    async def vote(self, slug: str, device: str, ip: str, chosen: Any) -> Ballot:
        """A device's ballot (a later one replaces it while the poll is open)."""
        poll = await self.poll(slug)
        if poll is None:
            raise not_found("poll")
        choice = dpolls.ballot_choice(poll, chosen, now_ms())
        s = self.settings
        wait = await self.shows.take(f"poll:{slug}", device, "ballot", s.poll_vote_rate, s.poll_vote_burst)
        if wait:  # guard: ballot budget
            raise Limited(wait)
        show = await self.shows.load(poll.show) if poll.show else None
        venue = self.venues.contains(ip, show.venues if show else [])
        voter = Voter(self.venues.network(ip), venue, await self.store.poll_see(slug, device))
        ballot = await self.store.poll_vote(slug, device, choice, voter)
        self._results.pop(slug, None)
        return ballot

    async def my_choice(self, slug: str, device: str) -> list[str]:
        ballot = await self.store.poll_ballot(slug, device)
        return ballot.side.split(",") if ballot else []

    async def seen(self, slug: str, device: str) -> None:
        """The device opened the poll's page (its first visit dates it for the burst rule)."""
        await self.store.poll_see(slug, device)

    async def close_poll(self, slug: str) -> Poll:
        poll = await self.poll(slug)
        if poll is None:
            raise not_found("poll")
        closed = dpolls.close(poll, now_ms())
        closed.version = await self.store.put("poll", slug, closed.record(), poll.version)
        self._results.pop(slug, None)
        return closed

    async def reopen_poll(self, slug: str, closes: int = 0) -> Poll:
        poll = await self.poll(slug)
        if poll is None:
            raise not_found("poll")
        opened = dpolls.reopen(poll, now_ms(), closes)
        opened.version = await self.store.put("poll", slug, opened.record(), poll.version)
        return opened

    async def release(self, slug: str, reason: str) -> int:
        """Count the poll's held ballots (while it is open, as for a round)."""
        poll = await self.poll(slug)
        if poll is None:
            raise not_found("poll")
        if poll.status(now_ms()) != dpolls.OPEN:
            raise DomainError("conflict", "held ballots can be counted while the poll is open")
        if reason not in ("", "network", "burst"):
            raise DomainError("invalid", "reason must be network, burst or empty", "reason")
        n = await self.store.poll_release(slug, reason)
        self._results.pop(slug, None)
        return n

    async def standings(self, gid: str) -> list[dict[str, Any]]:
        """The polls a guest stands in: rank and votes where the public may see them."""
        now = now_ms()
        out = []
        for poll in await self.polls():
            if gid not in [o.get("guest") for o in poll.options]:
                continue
            res = await self.results(poll)
            row: dict[str, Any] = {"slug": poll.slug, "title": poll.title, "status": poll.status(now)}
            row["ballots"] = res.ballots
            if poll.revealed(now) and res.ballots:
                rank = next(r for r, o, _ in dpolls.standing(poll, res) if o.get("guest") == gid)
                oid = next(o["id"] for o in poll.options if o.get("guest") == gid)
                row.update(rank=rank, votes=res.counted.get(oid, 0), share=round(res.share(oid), 4))
            out.append(row)
        return out

    # -- the audience's path, the dashboard --------------------------------------------

    async def after(self, slug: str) -> dict[str, Any] | None:
        """What a phone shows once an episode has ended: its result, the next episode,
        the open season poll, the roster's size. Public."""
        episodes = await self.episodes()
        state = next((s for s in episodes if s.slug == slug), None) or await self.shows.load(slug)
        if state is None:
            return None
        result = dguests.appearance(state, "a")
        upcoming = sorted(
            (s for s in episodes if s.status == "draft" and s.date and s.date >= time.strftime("%Y-%m-%d")),
            key=lambda s: (s.date, s.created),
        )
        nxt = upcoming[0] if upcoming else None
        poll = await self.open_poll()
        return {
            "slug": state.slug,
            "status": state.status,
            "rounds_won": dict(state.rounds_won),
            "likes": dict(state.counters.likes),
            "winner": {"won": "a", "lost": "b"}.get(result.outcome),
            "next": None
            if nxt is None
            else {
                "slug": nxt.slug,
                "title": nxt.title,
                "date": nxt.date,
                "guests": [_side_guest(nxt, k) for k in ("a", "b")],
            },
            "poll": None if poll is None else {"slug": poll.slug, "title": poll.title},
            "guests": len(await self.guests(listed_only=True)),
        }

    async def counts(self) -> dict[str, Any]:
        """Season figures for the dashboard: the roster, polls, requests and talks."""
        now = now_ms()
        polls = await self.polls()
        return {
            "guests": len(await self.guests(listed_only=True)),
            "polls_open": sum(1 for p in polls if p.status(now) == dpolls.OPEN),
            **await self.talks.counts(),
        }


def _side_guest(state: ShowState, key: str) -> dict[str, Any]:
    side = state.sides.get(key) or {}
    return {"name": side.get("guest") or side.get("name") or "", "id": side.get("guest_id") or None}
