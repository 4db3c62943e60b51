"""Token buckets: time is passed in, so they are pure and testable."""

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # bucket size
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, n: float = 1.0) -> float:
        """Take `n` tokens; return 0 if allowed, else the seconds until they would be."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        elif now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate if self.rate > 0 else float("inf")

    def take_up_to(self, now: float, n: int) -> int:
        """Take as many whole tokens as there are, up to `n`; return how many."""
        self.take(now, 0)  # refill
        allowed = min(n, int(self.tokens))
        self.tokens -= allowed
        return allowed

    def full_again_at(self) -> float:
        """When the bucket, left alone, is full again (then it can be forgotten)."""
        if self.rate <= 0:
            return float("inf")
        return self.stamp + max(0.0, self.burst - self.tokens) / self.rate


class Buckets:
    """One token bucket per (holder, kind), forgotten once it is full again: a bucket
    left alone for `burst / rate` seconds is exactly a new one, so forgetting it loses
    nothing and the table holds only the holders active in that window."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def bucket(self, holder: str, kind: str, rate: float, burst: float, now: float) -> TokenBucket:
        self._expire(now)
        key = (holder, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def take(self, holder: str, kind: str, rate: float, burst: float, now: float) -> float:
        """0 if allowed, else the seconds until it would be."""
        return self.bucket(holder, kind, rate, burst, now).take(now)

    def _expire(self, now: float) -> None:
        """Forget the least recently used buckets that are full again (a few per call)."""
        for _ in range(2):
            if not self._buckets:
                return
            key, bucket = next(iter(self._buckets.items()))
            if bucket.full_again_at() > now:
                return
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
