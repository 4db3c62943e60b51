"""Token buckets: time is passed in, so they are pure and testable."""

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
