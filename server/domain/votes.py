"""Votes: one per device per round, changeable; the tally follows the change."""


def change(counts: dict[str, int], previous: str | None, side: str) -> dict[str, int]:
    """New per-side counts after a device moves its vote from `previous` to `side`."""
    if previous == side:
        return counts
    new = dict(counts)
    if previous is not None:
        new[previous] = new.get(previous, 0) - 1
    new[side] = new.get(side, 0) + 1
    return new
