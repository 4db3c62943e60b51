"""Host sessions that can be ended, and sign-in that cannot be guessed at speed.

Session cookies are signed (web/security.py), so any process accepts them; what
ends one early is kept in the store (the season store's versioned records, kind
"access", in SQLite or Redis), so it holds across processes and restarts:

- `revoked`: the sessions signed out one by one (each kept until it would have
  expired anyway);
- `generation`: the number of times someone signed out everywhere. A session
  carries the generation it was made under and is valid only under the same one.

Every process keeps a copy, checked on each request and socket (no store read
per request), and re-reads the record every `SESSION_CHECK_S`; a change closes
the consoles whose session ended (4401). The process that made the change
applies it at once.

Sign-in: failed tries are counted per address and in total (the store's
counters, shared by every process). Past `LOGIN_FAILURES_PER_IP` in a minute
an address gets 429 with `Retry-After` for the rest of the minute; past
`LOGIN_FAILURES_PER_MINUTE` from all addresses together (guessing spread over
many addresses), every sign-in does. A host already signed in is not affected.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..node import Conflict, StoreUnavailable
from ..settings import Settings
from .security import HostSession

log = logging.getLogger("leitai.sessions")

KIND, RID = "access", "sessions"
WINDOW_S = 60


class Sessions:
    def __init__(self, settings: Settings, records: Any, counters: Any) -> None:
        self.settings = settings
        self.store = records  # the season store: versioned records
        self.counters = counters  # the show store: `count(key, window_s)`, shared by every process
        self.generation = 0
        self.revoked: dict[str, float] = {}  # sid -> when it would have expired (epoch s)
        self.version = 0
        self.listeners: list[Callable[[], None]] = []
        self.blocked: dict[str, float] = {}  # address (or "*": everyone) -> monotonic time it may try again
        self._warned = 0.0

    # -- revocation ------------------------------------------------------------------

    def valid(self, session: HostSession | None) -> bool:
        if session is None:
            return False
        if session.generation != self.generation:  # guard: sign out everywhere
            return False
        return session.sid not in self.revoked  # guard: revoked session

    def _apply(self, record: dict[str, Any] | None) -> bool:
        """Take the stored record; True if it changed anything."""
        version = int(record["version"]) if record else 0
        if version == self.version:
            return False
        record = record or {}
        self.version = version
        self.generation = int(record.get("generation", 0))
        self.revoked = {str(k): float(v) for k, v in (record.get("revoked") or {}).items()}
        for listener in self.listeners:
            listener()
        return True

    async def load(self) -> bool:
        return self._apply(await self.store.get(KIND, RID))

    async def _change(self, change: Callable[[int, dict[str, float]], tuple[int, dict[str, float]]]) -> None:
        """Compare-and-set the record with `change` (another process may write at once)."""
        for _ in range(20):
            record = await self.store.get(KIND, RID)
            self._apply(record)
            expect = int(record["version"]) if record else 0
            now = time.time()
            revoked = {sid: until for sid, until in self.revoked.items() if until > now}
            generation, revoked = change(self.generation, revoked)
            body = {"generation": generation, "revoked": revoked}
            try:
                version = await self.store.put(KIND, RID, body, expect)
            except Conflict:
                continue
            self._apply({**body, "version": version})
            return
        raise StoreUnavailable("sessions record kept changing")

    async def revoke(self, session: HostSession) -> None:
        """End one session (sign out)."""
        until = session.issued + self.settings.session_max_age_s
        await self._change(lambda gen, revoked: (gen, {**revoked, session.sid: until}))

    async def revoke_all(self) -> None:
        """End every host session (sign out everywhere)."""
        await self._change(lambda gen, revoked: (gen + 1, {}))

    async def watch(self) -> None:
        """Re-read the record now and then (another process may have changed it)."""
        while True:
            await asyncio.sleep(self.settings.session_check_s)
            try:
                await self.load()
            except StoreUnavailable:
                pass  # keep what we know; the next read will tell
            except Exception:
                log.exception("reading the sessions record failed")

    # -- sign-in throttle ----------------------------------------------------------------

    def login_wait(self, ip: str) -> float:
        """Seconds before `ip` may try to sign in again (0: now)."""
        now = time.monotonic()
        until = max(self.blocked.get(ip, 0.0), self.blocked.get("*", 0.0))
        return until - now if until > now else 0.0

    async def failed(self, ip: str) -> None:
        """Count a failed sign-in, for the address and for everyone."""
        s = self.settings
        now = time.monotonic()
        if len(self.blocked) > 10_000:
            self.blocked = {k: v for k, v in self.blocked.items() if v > now}
        mine = await self.counters.count(f"login-fail:{ip}", WINDOW_S)
        if s.login_failures_per_ip and mine >= s.login_failures_per_ip:  # guard: login per address
            self.blocked[ip] = now + WINDOW_S
        everyone = await self.counters.count("login-fail:*", WINDOW_S)
        if s.login_failures_per_minute and everyone >= s.login_failures_per_minute:  # guard: login in total
            self.blocked["*"] = now + WINDOW_S
            if now - self._warned > WINDOW_S:
                self._warned = now
                log.warning("more than %d failed sign-ins in a minute: sign-in paused", s.login_failures_per_minute)
