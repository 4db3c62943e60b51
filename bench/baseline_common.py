"""What both baselines share with Leitai, so that a comparison measures the
libraries and not a different job: the same settings (read from Leitai's own
`Settings`, so the same environment variables and defaults), the same per-role
tick schedule, the same garbage-collector settings, the same tally frame.

* **Schedule** (`server/node/ticker.py`): every `TICK_MS` overlays and consoles
  get the tally if it changed; phones are split into
  `round(PHONE_TICK_MS / TICK_MS)` groups (a new phone joins the smallest), and
  one group per tick gets the tally if it changed since that group's last one,
  so each phone hears every `PHONE_TICK_MS` and no tick writes to all phones.
* **GC** (`server/app.py` lifespan): once started, `gc.collect()`,
  `gc.freeze()` and `gc.set_threshold(GC_THRESHOLD0, 50, 100)`.
* **Tally**: the same keys in the same order as Leitai's (`ShowState.tally()`),
  `seq` first, encoded once per tick with orjson.
"""

import gc
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.settings import Settings


@dataclass
class Schedule:
    tick_s: float
    groups: int
    gc_thresholds: tuple[int, int, int]
    ping_interval_s: float
    ping_timeout_s: float
    max_size: int

    @classmethod
    def from_env(cls) -> "Schedule":
        s = Settings.from_env()
        return cls(
            tick_s=s.tick_ms / 1000,
            groups=max(1, round(s.phone_tick_ms / s.tick_ms)),  # as server/node/node.py
            gc_thresholds=s.gc_thresholds,
            ping_interval_s=s.ws_ping_interval_s,
            ping_timeout_s=s.ws_ping_timeout_s,
            max_size=s.ws_max_size,
        )

    def tune_gc(self) -> None:
        """Leitai's GC settings (server/app.py): start-up objects frozen, later collections."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(*self.gc_thresholds)


@dataclass
class Groups:
    """Phones in `n` groups, a new phone in the smallest (server/hub.py Room.add)."""

    n: int
    sets: list[set] = field(default_factory=list)
    of: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sets = [set() for _ in range(self.n)]

    def add(self, item: Any) -> int:
        g = min(range(self.n), key=lambda i: len(self.sets[i]))
        self.sets[g].add(item)
        self.of[item] = g
        return g

    def remove(self, item: Any) -> None:
        g = self.of.pop(item, None)
        if g is not None:
            self.sets[g].discard(item)

    def __len__(self) -> int:
        return len(self.of)


class Counts:
    """The show's counters, kept incrementally."""

    def __init__(self) -> None:
        self.likes = {"a": 0, "b": 0}
        self.votes = {"a": 0, "b": 0}
        self.ballots: dict[str, str] = {}
        self.questions = 0
        self.peak = 0
        self.unique: set[str] = set()

    def vote(self, device: str, side: str) -> None:
        old = self.ballots.get(device)
        if old is not None:
            self.votes[old] -= 1
        self.ballots[device] = side
        self.votes[side] += 1

    def clear_votes(self) -> None:
        self.ballots.clear()
        self.votes = {"a": 0, "b": 0}

    def tally(self, viewers: int, overlays: int) -> dict:
        """The same keys, in the same order, as Leitai's tally frame."""
        self.peak = max(self.peak, viewers)
        return {
            "seq": 0,
            "type": "tally",
            "likes": self.likes,
            "votes": self.votes,
            "points": {"a": 0, "b": 0},
            "viewers": viewers,
            "rounds_won": {"a": 0, "b": 0},
            "peak_viewers": self.peak,
            "unique_viewers": len(self.unique),
            "overlays": overlays,
        }


def encode(frame: dict) -> bytes:
    return orjson.dumps(frame)


class Cookies:
    """The signed `lt_device` cookie of both baselines."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()

    def sign(self, device: str) -> str:
        return device + "." + hmac.new(self.secret, device.encode(), hashlib.sha256).hexdigest()[:32]

    def device_of(self, cookie_header: str | None) -> str | None:
        for part in (cookie_header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "lt_device":
                device, _, _sig = value.rpartition(".")
                if device and hmac.compare_digest(self.sign(device), value):
                    return device
        return None
