"""Remembered replies in one process (the embedded store's `Replies`).

Replies are kept as compact copies of their bytes under a byte budget, oldest
first out, and leave memory `ttl_s` after they were made (so a show's replies
reach their steady size within `ttl_s`, not when the budget is full). A message still being handled is
awaited by a resend of the same id, which then gets the same reply.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import Replies

# a dict entry, the key tuple and its two strings, the value tuple, its time, the bytes
# object's header: ~350 bytes on CPython 3.11 (tracemalloc, tests/test_soak.py)
OVERHEAD = 350


def entry_size(key: tuple[str, str], reply: bytes) -> int:
    return OVERHEAD + len(key[0]) + len(key[1]) + len(reply)


class MemoryReplies(Replies):
    def __init__(self, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self.bytes = 0
        self._done: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def begin(self, key: tuple[str, str]) -> bytes | None:
        done = self._done.get(key)  # guard: dedupe
        if done is not None:
            if self.clock() - done[0] < self.ttl_s:
                return done[1]
            self._forget(key)
        running = self._running.get(key)
        if running is not None:
            reply: bytes | None = await asyncio.shield(running)
            if reply is not None:
                return reply
        self._running[key] = asyncio.get_running_loop().create_future()
        return None

    async def finish(self, key: tuple[str, str], reply: bytes | None) -> None:
        running = self._running.pop(key, None)
        if running is not None and not running.done():
            running.set_result(reply)
        if reply is None:
            return
        # an encoder's result sits in a 4 KiB allocation: keep a copy of its exact size
        reply = bytes(bytearray(reply))  # guard: compact replies
        now = self.clock()
        self._forget(key)
        self._done[key] = (now, reply)
        self.bytes += entry_size(key, reply)
        while self.bytes > self.max_bytes and self._done:  # guard: reply budget
            self._forget(next(iter(self._done)))
        # oldest first: the expired ones leave now, not when pushed out by the budget
        while self._done:  # guard: reply ttl
            oldest = next(iter(self._done))
            if now - self._done[oldest][0] < self.ttl_s:
                break
            self._forget(oldest)

    def _forget(self, key: tuple[str, str]) -> None:
        done = self._done.pop(key, None)
        if done is not None:
            self.bytes -= entry_size(key, done[1])
