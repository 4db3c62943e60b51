"""Rounds: a small state machine with a server-authoritative clock.

Time is passed in as milliseconds since the epoch. A running round keeps
`started_at` (when it last started or resumed) and `elapsed_ms` (time run
before that), so the remaining time is exact after any number of pauses.
"""

from dataclasses import asdict, dataclass, replace
from typing import Any

from . import DomainError

IDLE, RUNNING, PAUSED, FINISHED = "idle", "running", "paused", "finished"
ROUND_STATUSES = (IDLE, RUNNING, PAUSED, FINISHED)
MIN_DURATION_S, MAX_DURATION_S = 10, 7200


@dataclass(frozen=True, slots=True)
class Round:
    index: int = 0
    topic: str = ""
    status: str = IDLE
    duration_s: int = 0
    elapsed_ms: int = 0
    started_at: int | None = None
    sealed: bool = False  # its vote split is shown to no one but the console until it ends

    @property
    def open(self) -> bool:
        """Votes count while the round runs or is paused."""
        return self.status in (RUNNING, PAUSED)

    def run_ms(self, now: int) -> int:
        if self.status == RUNNING and self.started_at is not None:
            return self.elapsed_ms + max(0, now - self.started_at)
        return self.elapsed_ms

    def remaining_ms(self, now: int) -> int:
        return max(0, self.duration_s * 1000 - self.run_ms(now))

    def view(self, now: int) -> dict[str, Any]:
        """What clients see: no raw clock fields, the remaining time instead."""
        return {
            "index": self.index,
            "topic": self.topic,
            "status": self.status,
            "duration_s": self.duration_s,
            "remaining_ms": self.remaining_ms(now),
            "sealed": self.sealed,
        }

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Round":
        return cls(**data)


def start(current: Round, topic: str, duration_s: int, now: int, sealed: bool = False) -> Round:
    if current.open:
        raise DomainError("conflict", "a round is already running; end it first")
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        raise DomainError("invalid", f"duration_s must be {MIN_DURATION_S}..{MAX_DURATION_S}")
    return Round(current.index + 1, topic, RUNNING, duration_s, 0, now, sealed)


def pause(current: Round, now: int) -> Round:
    if current.status != RUNNING:
        raise DomainError("conflict", f"cannot pause a round that is {current.status}")
    return replace(current, status=PAUSED, elapsed_ms=current.run_ms(now), started_at=None)


def resume(current: Round, now: int) -> Round:
    if current.status != PAUSED:
        raise DomainError("conflict", f"cannot resume a round that is {current.status}")
    return replace(current, status=RUNNING, started_at=now)


def end(current: Round, now: int) -> Round:
    if not current.open:
        raise DomainError("conflict", f"cannot end a round that is {current.status}")
    return replace(current, status=FINISHED, elapsed_ms=current.run_ms(now), started_at=None)


def winner(votes: dict[str, int]) -> str | None:
    """The side with more votes; a tie (or no votes) has no winner."""
    a, b = votes.get("a", 0), votes.get("b", 0)
    return "a" if a > b else "b" if b > a else None
