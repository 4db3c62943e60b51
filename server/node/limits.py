"""Per-device budgets and the reply cache of one show in this process.

Token buckets are kept per device (phones) or per console, not per socket, so
a device that reconnects finds its budget as it left it. A bucket that has
not been touched for `burst / rate` seconds is full again, exactly as a new
one would be, so it is forgotten then: the table never grows past the devices
active in that window, and forgetting loses nothing.

Replies to client ids are remembered so that a resent message is answered
with the first reply and not applied again. They are kept as small `Reply`
values (not encoded bytes) under a byte budget, oldest first out.
"""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..domain.ratelimit import TokenBucket
from ..protocol import ProtocolError, Reply


@dataclass(frozen=True, slots=True)
class Budget:
    rate: float  # per second
    burst: float
    message: str = "too fast, slow down"


class Buckets:
    """One token bucket per (holder, kind), forgotten once it would be full again."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def take(self, holder: str, kind: str, budget: Budget, now: float) -> float:
        """0 if allowed, else the seconds until it would be."""
        key = (holder, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(budget.rate, budget.burst)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(now)
        self._expire(now)
        return wait

    def _expire(self, now: float) -> None:
        """Forget the least recently used buckets that are full again (a few per call)."""
        for _ in range(2):
            if not self._buckets:
                return
            key, bucket = next(iter(self._buckets.items()))
            idle = now - bucket.stamp
            if bucket.rate <= 0 or idle * bucket.rate + bucket.tokens < bucket.burst:
                return
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class Limits:
    """Checks one message against its budget; raises `rate_limited` when spent."""

    def __init__(self) -> None:
        self.buckets = Buckets()

    def check(self, holder: str, kind: str, budget: Budget, msg_id: str | None, now: float) -> None:
        wait = self.buckets.take(holder, kind, budget, now)  # guard: device bucket
        if wait:
            raise ProtocolError("rate_limited", budget.message, msg_id, retry_ms=int(wait * 1000) + 1)


def reply_size(key: tuple[str, str], reply: Reply) -> int:
    """A fair estimate of what one remembered reply costs in memory."""
    extra = sum(len(str(k)) + len(str(v)) for k, v in (reply.extra or {}).items())
    return 240 + len(key[0]) + len(key[1]) + len(reply.message) + extra


class ReplyCache:
    """Replies to recent client ids, under a byte budget; in-flight ones are awaited."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._done: OrderedDict[tuple[str, str], Reply] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def recall(self, key: tuple[str, str]) -> Reply | None:
        """The reply already given (or about to be) to this id, if any."""
        reply = self._done.get(key)  # guard: dedupe
        if reply is not None:
            return reply
        running = self._running.get(key)
        if running is not None:
            result: Reply = await asyncio.shield(running)
            return result
        return None

    def claim(self, key: tuple[str, str]) -> None:
        self._running[key] = asyncio.get_running_loop().create_future()

    def settle(self, key: tuple[str, str], reply: Reply) -> None:
        """The reply to a claimed id; transient errors are not remembered (a retry runs afresh)."""
        running = self._running.pop(key, None)
        if running is not None and not running.done():
            running.set_result(reply)
        if reply.transient:
            return
        self._done[key] = reply
        self.bytes += reply_size(key, reply)
        while self.bytes > self.max_bytes and self._done:
            old_key, old = self._done.popitem(last=False)
            self.bytes -= reply_size(old_key, old)
