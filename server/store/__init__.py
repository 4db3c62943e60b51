"""One store/broker contract, two implementations (embedded, Redis).

The store keeps the durable state of every show, hands out `seq`, and tells
the node about every committed event through `on_event`, in `seq` order,
whichever process committed it. Counters (likes, votes, viewers) live beside
the events and are read once per tick.
"""

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

from ..domain.integrity import Ballot, VoteCounts, VotePolicy, Voter
from ..domain.show import Counters, ShowState
from ..domain.verdict import StanceCounts
from ..settings import Settings

log = logging.getLogger("leitai.store")

Box = int | str  # a ballot box: a round's index, or "pre" / "post" (the stances)
STANCE_BOXES = ("pre", "post")
OTHER = {"pre": "post", "post": "pre"}


class DeviceState(NamedTuple):
    """What one device did: its vote in the round, its upvotes, its stances."""

    vote: str | None
    upvoted: list[str]
    stances: dict[str, str] | None = None  # phase -> stance


LostSink = Callable[[str], None]
EventSink = Callable[[str, int, int, dict[str, Any]], None]  # (slug, seq, pseq or 0, event)
SignalSink = Callable[[str, dict[str, Any]], None]
ResyncSink = Callable[[], None]


class StoreUnavailable(Exception):
    """The backing store cannot be reached, or cannot write now; nothing was recorded
    (but for `likes_taken`: a tick whose likes were counted before the rest failed)."""

    likes_taken = False


class StateLost(StoreUnavailable):
    """The store's state is not the one this process served (wiped, or another one):
    nothing is acknowledged until the operator acts (docs/deploy.md, "Redis lost its state")."""


class StoreRefused(RuntimeError):
    """The store will not serve as it is set up (the message says why and what to do)."""


class Conflict(Exception):
    """A compare-and-set failed, or a show with that slug exists."""


class Store(ABC):
    on_event: EventSink
    on_signal: SignalSink
    on_resync: ResyncSink  # the event stream had a hole: reload every replica
    on_lost: LostSink  # the state was lost or is foreign (see `lose`)
    # A random id made once, when the state is first created (embedded: in its SQLite;
    # Redis: a key every process reads at start and checks on every tick and resync).
    # With `seq`, a position in the show's history: a new epoch means that history is gone.
    epoch: str
    lost: str  # "" while the state is the one this process serves, else why not

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.epoch = ""
        self.lost = ""
        self.on_lost = lambda reason: None
        self.vote_policy = VotePolicy(settings.votes_per_network, settings.vote_burst_max, settings.vote_young_s * 1000)
        self.on_event = lambda slug, seq, pseq, event: None
        self.on_signal = lambda slug, frame: None
        self.on_resync = lambda: None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect, load, start background work."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Finish pending writes and let go of resources."""

    @abstractmethod
    async def ready(self) -> bool: ...

    def shows_in_memory(self) -> int:
        """Shows whose records this process holds in memory (Redis mode: none)."""
        return 0

    async def unload(self, slug: str) -> bool:
        """Forget what this process holds of a show (it is loaded again when next
        needed); False if it could not be now. Redis mode holds nothing per show."""
        return True

    # A selective store delivers a show's events only while the show is followed (the
    # process has sockets for it); the embedded store, one process, delivers all.
    selective = False

    async def follow(self, slug: str) -> None:  # noqa: B027 - optional hook
        """Deliver the show's events from now on (returns once that holds)."""

    async def unfollow(self, slug: str) -> None:  # noqa: B027 - optional hook
        """Stop delivering the show's events."""

    async def problem(self) -> str:
        """Why the store cannot read and write now ("" when it can), for /readyz."""
        return "" if await self.ready() else "store unavailable"

    def lose(self, reason: str) -> None:
        """The state is not the one this process served: from now on no write is
        acknowledged (StateLost), /readyz says why, consoles are told. Said once, loudly."""
        if self.lost:
            return
        self.lost = reason
        log.critical(
            "STATE LOST: %s. This process acknowledges no more writes; restore Redis and restart "
            "every process, or restart them with REDIS_ACCEPT_NEW_STATE=1 (docs/deploy.md)",
            reason,
        )
        self.on_lost(reason)

    def writable(self) -> None:
        """Raise StateLost once the state was lost (see `lose`)."""
        if self.lost:  # guard: no writes on a lost state
            raise StateLost(f"the show's stored state was lost ({self.lost}); the operator must act")

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Wait until every write queued before this call has been made (a barrier for tests)."""

    async def watch(self) -> None:  # noqa: B027 - optional hook
        """Check that the state is still the one this process served (Redis: its epoch),
        `lose` it if not. A show's tick does it too; the ticker calls this once a second
        when no show was ticked, so an idle process (and the season) notices as well."""

    @abstractmethod
    async def list_shows(self) -> list[str]: ...

    @abstractmethod
    async def create_show(self, state: ShowState) -> None:
        """Store a new show (seq 0); raise Conflict if the slug is taken."""

    @abstractmethod
    async def load(self, slug: str) -> ShowState | None:
        """The show's state with its seq and current counters, read atomically."""

    @abstractmethod
    async def commit(
        self, slug: str, events: list[dict[str, Any]], expect: dict[str, bytes | None] | None = None
    ) -> int:
        """Persist events under the next seqs and publish them; return the last seq.

        A public event (see domain.show.is_public) also takes the next public
        sequence number, `pseq`; a private one is published with pseq 0.

        With `expect`, every named field must still hold that value (None: absent),
        or nothing is written and Conflict is raised.
        """

    @abstractmethod
    async def signal(self, slug: str, frame: dict[str, Any]) -> None:
        """A frame for every process's sockets that changes no state (e.g. reload)."""

    @abstractmethod
    async def next_question_id(self, slug: str) -> str: ...

    @abstractmethod
    async def vote(self, slug: str, box: Box, device: str, side: str, voter: Voter) -> Ballot:
        """Record the device's vote in a box (a round's index, or a stance phase), counted
        or held (see domain.integrity); a changed vote keeps its status. A stance also
        moves the device in the pre -> post matrix. Atomic across processes."""

    @abstractmethod
    async def unvote(self, slug: str, box: Box, device: str) -> None:
        """Take the device's vote in the round back (a banned device)."""

    @abstractmethod
    async def release_votes(self, slug: str, box: Box, reason: str) -> int:
        """Count the round's votes held for `reason` ("" for every reason); return how many."""

    @abstractmethod
    async def device_state(self, slug: str, round_index: int, device: str) -> DeviceState:
        """The device's vote in the round, the questions it has upvoted, its stances."""

    @abstractmethod
    async def stance_counts(self, slug: str) -> StanceCounts:
        """The counted stances of each phase and the pre -> post matrix."""

    @abstractmethod
    async def upvote(self, slug: str, qid: str, device: str) -> int | None:
        """Count one upvote per device; return the new count, None if already counted."""

    @abstractmethod
    async def vote_counts(self, slug: str, box: Box) -> VoteCounts:
        """The round's votes: counted and held."""

    @abstractmethod
    async def tick(
        self, slug: str, likes: dict[str, list[int]], round_index: int, viewers: int, overlays: int = 0
    ) -> Counters:
        """Count this process's taps (per device: [a, b]) within each device's cap
        (`LIKE_RATE`, `LIKE_BURST`, shared across processes), report this process's
        viewers and overlays, and read the counters. Raises StoreUnavailable with
        `likes_taken` False when the taps were not counted (the caller keeps them)."""

    @abstractmethod
    async def take(self, slug: str, holder: str, kind: str, rate: float, burst: float) -> float:
        """One token from the holder's bucket of this kind: 0 if allowed, else the seconds
        to wait. Shared by every process; a bucket outlives the socket that used it."""

    @abstractmethod
    def replies(self, slug: str) -> "Replies":
        """The show's remembered replies to client ids."""

    @abstractmethod
    async def once(self, key: str, ttl_s: int) -> bool:
        """True the first time `key` is seen within `ttl_s` (e.g. a solved challenge)."""

    @abstractmethod
    async def count(self, key: str, window_s: int) -> int:
        """Add one to a counter that expires `window_s` after its first count; return it."""

    @abstractmethod
    async def reset_counters(self, slug: str) -> None:
        """Zero likes, votes, peak and unique viewers (a rehearsal reset)."""

    @abstractmethod
    async def see_device(self, slug: str, device: str) -> int:
        """Count a device towards the show's unique viewers; return when it was first seen (ms)."""

    @abstractmethod
    async def sample(self, slug: str, seq: int, data: dict[str, Any]) -> None:
        """Append a counters sample to the timeline."""

    @abstractmethod
    async def timeline(self, slug: str) -> list[dict[str, Any]]:
        """Every timeline entry: {"seq", "ts", "type", ...}."""


def make_store(settings: Settings) -> Store:
    if settings.redis_url:
        from .redis import RedisStore

        return RedisStore(settings)
    from .embedded import EmbeddedStore

    return EmbeddedStore(settings)


PENDING = b""  # Replies.begin: another process is still handling this id; try again


class Replies(ABC):
    """Replies to client ids (holder, id), as the encoded frames they were sent as: a
    resent message gets the first reply and is not applied again. `begin` returns
    the reply to give if the id was seen (waiting for it if another message with
    the id is still being handled), or None: the caller now owns the id and must
    `finish` it, with the reply, or None to forget the id (a transient error, so
    that a retry runs afresh)."""

    @abstractmethod
    async def begin(self, key: tuple[str, str]) -> bytes | None: ...

    @abstractmethod
    async def finish(self, key: tuple[str, str], reply: bytes | None) -> None: ...
