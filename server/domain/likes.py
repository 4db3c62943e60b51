"""Likes are counted in the process and flushed once per tick."""

from dataclasses import dataclass, field

MAX_PER_FRAME = 50


@dataclass(slots=True)
class LikeBuffer:
    """Taps received since the last flush, per side."""

    pending: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})

    def add(self, side: str, count: int) -> None:
        self.pending[side] += count

    def drain(self) -> dict[str, int]:
        out, self.pending = self.pending, {"a": 0, "b": 0}
        return out

    def restore(self, deltas: dict[str, int], cap: int) -> int:
        """Put back deltas that could not be flushed, up to `cap` in all; return taps dropped."""
        dropped = 0
        for side, n in deltas.items():
            room = max(0, cap - sum(self.pending.values()))
            keep = min(n, room)
            self.pending[side] += keep
            dropped += n - keep
        return dropped

    def __bool__(self) -> bool:
        return any(self.pending.values())
