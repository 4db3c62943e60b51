"""Likes are gathered in the process per device and flushed once per tick; the
store counts each device's taps up to that device's cap."""

from dataclasses import dataclass, field

MAX_PER_FRAME = 50
SIDE_INDEX = {"a": 0, "b": 1}


@dataclass(slots=True)
class LikeBuffer:
    """Taps received since the last flush: device -> [taps for a, taps for b]."""

    pending: dict[str, list[int]] = field(default_factory=dict)
    total: int = 0

    def add(self, device: str, side: str, count: int) -> None:
        taps = self.pending.get(device)
        if taps is None:
            taps = self.pending[device] = [0, 0]
        taps[SIDE_INDEX[side]] += count
        self.total += count

    def drain(self) -> dict[str, list[int]]:
        out, self.pending, self.total = self.pending, {}, 0
        return out

    def restore(self, deltas: dict[str, list[int]], cap: int) -> int:
        """Put back taps that could not be flushed, up to `cap` in all; return taps dropped."""
        dropped = 0
        for device, (a, b) in deltas.items():
            for side, n in (("a", a), ("b", b)):
                keep = min(n, max(0, cap - self.total))
                if keep:
                    self.add(device, side, keep)
                dropped += n - keep
        return dropped

    def sides(self) -> dict[str, int]:
        """Taps per side (all devices)."""
        return {"a": sum(t[0] for t in self.pending.values()), "b": sum(t[1] for t in self.pending.values())}

    def __bool__(self) -> bool:
        return self.total > 0


def split(taps: list[int], allowed: int) -> list[int]:
    """Which of a device's taps count when only `allowed` may: side a's first, then b's,
    in proportion when both sides were tapped."""
    a, b = taps
    if allowed >= a + b:
        return [a, b]
    if not a or not b:
        return [min(a, allowed), min(b, allowed)]
    share_a = round(allowed * a / (a + b))
    return [share_a, allowed - share_a]
