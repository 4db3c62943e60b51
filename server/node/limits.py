"""Per-device budgets, kept by the store so that they belong to the device: shared
by its sockets, kept across reconnects and (in Redis mode) across processes."""

from dataclasses import dataclass

from ..protocol import ProtocolError
from ..store import Store


@dataclass(frozen=True, slots=True)
class Budget:
    rate: float  # per second
    burst: float
    message: str = "too fast, slow down"


async def check(store: Store, slug: str, holder: str, kind: str, budget: Budget, msg_id: str | None) -> None:
    """Take one token from the holder's budget of this kind; `rate_limited` when spent."""
    wait = await store.take(slug, holder, kind, budget.rate, budget.burst)  # guard: device bucket
    if wait:
        raise ProtocolError("rate_limited", budget.message, msg_id, retry_ms=int(wait * 1000) + 1)
