"""Verdicts people can trust: the swing of the room, sealed rounds, equal speaking time.

Swing (the Intelligence Squared rule, done better). Before the first round the
host opens a *pre* stance, after the last one a *post* stance; each device takes
one stance per phase (a, b, or u: undecided), changeable while the phase is
open. The verdict counts only devices that took both stances: for each side,
its share of those devices after minus its share before (percentage points);
the side that gained more wins. The conversion matrix says how many moved from
what to what. Because the side that starts behind has more room to gain, the
raw post shares (of everyone who took a post stance) are shown beside it.

Sealed round: while it runs its vote split reaches no phone, overlay, public
response, metric or export; they get the number of ballots only. `round.end`
reveals it.

Speaking clock: the host gives the floor to a side (or the host, or nobody);
the clock runs for whoever has it. Each round's totals go into its result.
"""

from dataclasses import dataclass, field
from typing import Any

from . import DomainError

PHASES = ("pre", "post")
STANCES = ("a", "b", "u")
PHASE_STATES = ("idle", "open", "closed")
HOLDERS = ("a", "b", "host")


# -- stances -------------------------------------------------------------------------


def empty_matrix() -> dict[str, dict[str, int]]:
    return {p: {s: 0 for s in STANCES} for p in STANCES}


@dataclass(slots=True)
class StanceCounts:
    """Counted stances per phase, and the matrix (pre -> post) of devices that took both."""

    pre: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STANCES, 0))
    post: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STANCES, 0))
    matrix: dict[str, dict[str, int]] = field(default_factory=empty_matrix)

    def view(self, phases: dict[str, str]) -> dict[str, Any]:
        """What a snapshot's `show.stance` holds."""
        return {
            "phases": dict(phases),
            "pre": dict(self.pre),
            "post": dict(self.post),
            "swing": swing(self.matrix),
            "post_shares": shares(self.post),
            "matrix": self.matrix,
            "both": both(self.matrix),
        }


def both(matrix: dict[str, dict[str, int]]) -> int:
    return sum(n for row in matrix.values() for n in row.values())


def shares(counts: dict[str, int]) -> dict[str, float] | None:
    """Each stance's share of the counts (None with no one)."""
    total = sum(counts.values())
    if not total:
        return None
    return {s: round(counts.get(s, 0) / total, 4) for s in STANCES}


def swing(matrix: dict[str, dict[str, int]]) -> dict[str, Any] | None:
    """Among devices that took both stances: each side's share before and after, its
    gain in percentage points, and the winner (the larger gain; a tie has none).
    None until someone took both."""
    n = both(matrix)
    if not n:
        return None
    before = {s: sum(matrix[s].values()) / n for s in STANCES}
    after = {s: sum(matrix[p][s] for p in STANCES) / n for s in STANCES}
    gain = {s: round((after[s] - before[s]) * 100, 1) for s in ("a", "b")}
    winner = "a" if gain["a"] > gain["b"] else "b" if gain["b"] > gain["a"] else None
    return {
        "before": {s: round(before[s], 4) for s in STANCES},
        "after": {s: round(after[s], 4) for s in STANCES},
        "gain": gain,
        "winner": winner,
        "devices": n,
    }


def move(matrix: dict[str, dict[str, int]], pre: str | None, old_post: str | None, new_post: str | None) -> None:
    """A device with this pre stance changed its post stance: move it in the matrix."""
    if pre is None:
        return
    if old_post is not None:
        matrix[pre][old_post] -= 1
    if new_post is not None:
        matrix[pre][new_post] += 1


def default_phases() -> dict[str, str]:
    return dict.fromkeys(PHASES, "idle")


def decide_stance_phase(phases: dict[str, str], phase: str, action: str) -> dict[str, str]:
    """Open or close a phase: idle -> open -> closed (a closed phase may open again;
    the pre phase closes when the post one opens)."""
    if phase not in PHASES:
        raise DomainError("invalid", "phase must be pre or post", "phase")
    state = phases.get(phase, "idle")
    new = dict(default_phases(), **phases)
    if action == "open":
        if state == "open":
            raise DomainError("conflict", f"the {phase} stance is already open")
        new[phase] = "open"
        if phase == "post" and new["pre"] == "open":
            new["pre"] = "closed"
    elif action == "close":
        if state != "open":
            raise DomainError("conflict", f"the {phase} stance is not open")
        new[phase] = "closed"
    else:
        raise DomainError("invalid", f"unknown stance action {action}")
    return new


# -- sealed rounds -----------------------------------------------------------------------


def sealed_by_default(index: int, plan_rounds: int, seal_final: bool) -> bool:
    """The final planned round is sealed unless the show says otherwise."""
    return seal_final and plan_rounds > 0 and index >= plan_rounds


def public_votes(votes: dict[str, int], sealed_and_open: bool) -> tuple[dict[str, int] | None, int]:
    """The vote split as the public may see it (None while sealed), and the ballots."""
    ballots = sum(votes.values())
    return (None if sealed_and_open else votes), ballots


# -- the speaking clock --------------------------------------------------------------------


def empty_floor() -> dict[str, Any]:
    return {"holder": None, "since": None, "totals": dict.fromkeys(HOLDERS, 0)}


def floor_totals(floor: dict[str, Any], now: int) -> dict[str, int]:
    """Each holder's speaking time so far (ms), the running one included."""
    totals = dict(floor.get("totals") or dict.fromkeys(HOLDERS, 0))
    holder, since = floor.get("holder"), floor.get("since")
    if holder in HOLDERS and since is not None:
        totals[holder] = totals.get(holder, 0) + max(0, now - since)
    return totals


def decide_floor(floor: dict[str, Any], holder: str | None, now: int) -> dict[str, Any]:
    """Give the floor to `holder` (None: nobody). The clock of the one who had it stops."""
    if holder is not None and holder not in HOLDERS:
        raise DomainError("invalid", "the floor goes to a, b, host or nobody", "holder")
    if holder == floor.get("holder"):
        raise DomainError("conflict", "they already have the floor")
    return {"holder": holder, "since": now if holder else None, "totals": floor_totals(floor, now)}


def floor_view(floor: dict[str, Any], now: int) -> dict[str, Any]:
    """What clients get: who has the floor and each one's time so far (ms, at `now`)."""
    return {"holder": floor.get("holder"), "totals": floor_totals(floor, now)}


def lead_share(totals: dict[str, int]) -> float:
    """How far ahead the side that spoke more is, as a share of the two sides' time."""
    a, b = totals.get("a", 0), totals.get("b", 0)
    return abs(a - b) / (a + b) if a + b else 0.0
