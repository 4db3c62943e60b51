"""The season's store contract: guests, polls, talk requests, talks (as versioned
records), guest photos (blobs), poll ballots and talk sign-ups. Two implementations,
like the show store's: `season_embedded` (memory + SQLite, durable before visible)
and `season_redis` (shared by every process). `tests/test_season_store.py` runs the
same tests against both.

Records are JSON objects by kind and id, each with a `version` the store keeps:
`put` is a compare-and-set on it (0: the record must not exist yet), so two
producers changing one request at once cannot both win. Ballots follow
`domain.integrity` exactly as round votes do (counted or held, changeable, a
changed ballot keeps its status), atomically across processes.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ..domain.integrity import Ballot, VoteCounts, VotePolicy, Voter
from ..settings import Settings

KINDS = ("guest", "poll", "invitation", "talk")


class SeasonStore(ABC):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vote_policy = VotePolicy(settings.votes_per_network, settings.vote_burst_max, settings.vote_young_s * 1000)
        # Raises StateLost once the state is lost: the show store's `writable`, set by the
        # node (in Redis mode one Redis holds both, and the show store watches its epoch).
        self.state_check: Callable[[], None] = lambda: None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect or load."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Finish pending writes, let go of resources."""

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Wait until every write queued before this call has been made (tests)."""

    # -- records -------------------------------------------------------------------

    @abstractmethod
    async def next_id(self, kind: str) -> int:
        """A number never given before for this kind (ids are e.g. "g7", "r12")."""

    @abstractmethod
    async def get(self, kind: str, rid: str) -> dict[str, Any] | None:
        """The record with its `version`, or None."""

    @abstractmethod
    async def all(self, kind: str) -> list[dict[str, Any]]:
        """Every record of the kind, each with its `version` (any order)."""

    @abstractmethod
    async def put(self, kind: str, rid: str, record: dict[str, Any], expect: int) -> int:
        """Write the record if its version is still `expect` (0: it must not exist);
        return the new version. Raise Conflict otherwise (nothing written)."""

    # -- blobs (guest photos) ----------------------------------------------------------

    @abstractmethod
    async def put_blob(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    async def blob(self, key: str) -> bytes | None: ...

    # -- poll ballots ------------------------------------------------------------------

    @abstractmethod
    async def poll_see(self, poll: str, device: str) -> int:
        """When the device first came to the poll (ms), recording it now if new."""

    @abstractmethod
    async def poll_vote(self, poll: str, device: str, choice: str, voter: Voter) -> Ballot:
        """Record the device's ballot (`choice`: option ids joined with ","), counted or
        held by the rules of domain.integrity; a changed ballot keeps its status."""

    @abstractmethod
    async def poll_ballot(self, poll: str, device: str) -> Ballot | None: ...

    @abstractmethod
    async def poll_counts(self, poll: str) -> VoteCounts:
        """Ballots per choice: counted, held, and held per reason."""

    @abstractmethod
    async def poll_release(self, poll: str, reason: str) -> int:
        """Count the ballots held for `reason` ("" every reason); return how many."""

    # -- sign-ups ----------------------------------------------------------------------

    @abstractmethod
    async def signup(self, talk: str, key: str, record: dict[str, Any]) -> bool:
        """Append a sign-up under `key` (e.g. a hash of the phone number) after every
        earlier one; False (nothing written) if the key signed up already."""

    @abstractmethod
    async def signups(self, talk: str) -> list[dict[str, Any]]:
        """The talk's sign-ups in the order they came, each with its `key`."""

    @abstractmethod
    async def put_signup(self, talk: str, key: str, record: dict[str, Any]) -> None:
        """Replace an existing sign-up's record (cancelled, or its contact erased); its
        place in the order stays."""


def split_counts(raw: dict[str, int]) -> VoteCounts:
    """Ballot counts as both stores keep them ("<choice>", "held:<choice>",
    "r:<reason>") as VoteCounts keyed by choice."""
    counts = VoteCounts({}, {}, {})
    for name, n in raw.items():
        if name.startswith("held:"):
            counts.held[name[5:]] = n
        elif name.startswith("r:"):
            counts.reasons[name[2:]] = n
        else:
            counts.counted[name] = n
    return counts
