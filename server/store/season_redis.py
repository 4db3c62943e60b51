"""The season store in Redis, shared by every process.

Records, id counters, photos and sign-ups live under the hash tag `{season}` (one
Cluster slot: the scripts touch several of those keys at once); each poll's
ballots under its own tag `{poll:<slug>}`, counted by the show store's vote
scripts (the same rules, carried out atomically).
"""

import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from redis.exceptions import ResponseError

from ..domain import integrity
from ..domain.integrity import Ballot, VoteCounts, Voter
from ..settings import Settings
from . import Conflict, StoreUnavailable
from .redis import ERRORS, connect
from .season import SeasonStore, split_counts

T = TypeVar("T")

# KEYS: records hash, versions hash. ARGV: id, expected version, body.
PUT = """
local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if v ~= tonumber(ARGV[2]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], v + 1)
return v + 1
"""

# A poll ballot (domain.integrity.assess, carried out atomically): the poll's own copy of
# the show store's round-vote script, so that the two may change apart. KEYS: ballots,
# counts, counted per network, this minute's burst counter. ARGV: device, choice,
# network, venue, young, per_network, burst_max. Ballots are "choice|status|reason|network";
# counts holds "<choice>" (counted), "held:<choice>", "r:<reason>".
BALLOT = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local side = ARGV[2]
if prev then
  local pside, status, reason, net = string.match(prev, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not pside then pside, status, reason, net = prev, 'counted', '', 'unknown' end
  if pside == side then return prev end
  local ballot = side .. '|' .. status .. '|' .. reason .. '|' .. net
  redis.call('HSET', KEYS[1], ARGV[1], ballot)
  if status == 'counted' then
    redis.call('HINCRBY', KEYS[2], pside, -1)
    redis.call('HINCRBY', KEYS[2], side, 1)
  else
    redis.call('HINCRBY', KEYS[2], 'held:' .. pside, -1)
    redis.call('HINCRBY', KEYS[2], 'held:' .. side, 1)
  end
  return ballot
end
local net = ARGV[3]
local status, reason = 'counted', ''
if ARGV[4] ~= '1' then
  local burst = 0
  if ARGV[5] == '1' then
    burst = redis.call('INCR', KEYS[4])
    redis.call('EXPIRE', KEYS[4], 180)
  end
  if burst > tonumber(ARGV[7]) then
    status, reason = 'held', 'burst'
  elseif tonumber(redis.call('HGET', KEYS[3], net) or '0') >= tonumber(ARGV[6]) then
    status, reason = 'held', 'network'
  end
end
local ballot = side .. '|' .. status .. '|' .. reason .. '|' .. net
redis.call('HSET', KEYS[1], ARGV[1], ballot)
if status == 'counted' then
  redis.call('HINCRBY', KEYS[2], side, 1)
  redis.call('HINCRBY', KEYS[3], net, 1)
else
  redis.call('HINCRBY', KEYS[2], 'held:' .. side, 1)
  redis.call('HINCRBY', KEYS[2], 'r:' .. reason, 1)
end
return ballot
"""

# Count the held ballots (of one reason, or all). KEYS: ballots, counts, counted per network.
RELEASE_HELD = """
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local side, status, reason, net = string.match(all[i + 1], '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if status == 'held' and (ARGV[1] == '' or reason == ARGV[1]) then
    redis.call('HSET', KEYS[1], all[i], side .. '|counted||' .. net)
    redis.call('HINCRBY', KEYS[2], 'held:' .. side, -1)
    redis.call('HINCRBY', KEYS[2], 'r:' .. reason, -1)
    redis.call('HINCRBY', KEYS[2], side, 1)
    redis.call('HINCRBY', KEYS[3], net, 1)
    n = n + 1
  end
end
return n
"""

# KEYS: sign-ups hash, order zset, counter. ARGV: key, body.
SIGNUP = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return 1
"""

# KEYS: sign-ups hash. ARGV: key, body.
PUT_SIGNUP = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisSeasonStore(SeasonStore):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.prefix = settings.redis_prefix
        self.redis: Any = connect(settings.redis_url, settings.redis_max_connections)
        self._scripts = {
            name: self.redis.register_script(src)
            for name, src in (
                ("put", PUT),
                ("signup", SIGNUP),
                ("put_signup", PUT_SIGNUP),
                ("vote", BALLOT),
                ("release", RELEASE_HELD),
            )
        }

    async def _call(self, coro: Awaitable[T]) -> T:
        """Redis errors as StoreUnavailable (nothing recorded), as in the show store."""
        try:
            return await coro
        except ResponseError:
            raise  # a script's own error: a bug, not an outage
        except ERRORS as exc:
            raise StoreUnavailable(str(exc)) from None

    def _writable(self) -> None:
        """Before a write: refuse it (StateLost) once the state was found lost."""
        self.state_check()  # guard: season on a lost state

    def k(self, name: str) -> str:
        return f"{self.prefix}:{{season}}:{name}"

    def pk(self, poll: str, name: str) -> str:
        return f"{self.prefix}:{{poll:{poll}}}:{name}"

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        except Exception:
            pass

    # -- records -------------------------------------------------------------------

    async def next_id(self, kind: str) -> int:
        self._writable()
        return int(await self._call(self.redis.incr(self.k(f"id:{kind}"))))

    async def get(self, kind: str, rid: str) -> dict[str, Any] | None:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(self.k(f"rec:{kind}"), rid).hget(self.k(f"ver:{kind}"), rid)
                return await pipe.execute()

        body, version = await self._call(read())
        if body is None:
            return None
        return {**orjson.loads(body), "version": int(version or 0)}

    async def all(self, kind: str) -> list[dict[str, Any]]:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.k(f"rec:{kind}")).hgetall(self.k(f"ver:{kind}"))
                return await pipe.execute()

        bodies, versions = await self._call(read())
        return [{**orjson.loads(body), "version": int(versions.get(rid, 0))} for rid, body in bodies.items()]

    async def put(self, kind: str, rid: str, record: dict[str, Any], expect: int) -> int:
        self._writable()
        body = orjson.dumps({k: v for k, v in record.items() if k != "version"})
        version = await self._call(
            self._scripts["put"](keys=[self.k(f"rec:{kind}"), self.k(f"ver:{kind}")], args=[rid, expect, body])
        )
        if int(version) == -1:
            raise Conflict(f"{kind} {rid}")
        return int(version)

    # -- blobs ---------------------------------------------------------------------

    async def put_blob(self, key: str, data: bytes) -> None:
        self._writable()
        await self._call(self.redis.set(self.k(f"blob:{key}"), data))

    async def blob(self, key: str) -> bytes | None:
        data = await self._call(self.redis.get(self.k(f"blob:{key}")))
        return bytes(data) if data is not None else None

    # -- poll ballots ----------------------------------------------------------------

    async def poll_see(self, poll: str, device: str) -> int:
        async def run() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self.pk(poll, "devs"), device, int(time.time() * 1000))
                pipe.hget(self.pk(poll, "devs"), device)
                return await pipe.execute()

        _, first = await self._call(run())
        return int(first)

    def _keys(self, poll: str) -> list[str]:
        return [self.pk(poll, "v"), self.pk(poll, "vc"), self.pk(poll, "vn")]

    async def poll_vote(self, poll: str, device: str, choice: str, voter: Voter) -> Ballot:
        self._writable()
        now = int(time.time() * 1000)
        burst = self.pk(poll, f"vb:{voter.network}|{choice}|{integrity.burst_bucket(now)}")
        young = integrity.young(voter, now, self.vote_policy)
        policy = self.vote_policy
        raw = await self._call(
            self._scripts["vote"](
                keys=[*self._keys(poll), burst],
                args=[device, choice, voter.network, int(voter.venue), int(young), policy.per_network, policy.burst],
            )
        )
        return Ballot.decode(raw.decode())

    async def poll_ballot(self, poll: str, device: str) -> Ballot | None:
        raw = await self._call(self.redis.hget(self.pk(poll, "v"), device))
        return Ballot.decode(raw.decode()) if raw else None

    async def poll_counts(self, poll: str) -> VoteCounts:
        raw = await self._call(self.redis.hgetall(self.pk(poll, "vc")))
        return split_counts({k.decode(): int(v) for k, v in raw.items()})

    async def poll_release(self, poll: str, reason: str) -> int:
        self._writable()
        return int(await self._call(self._scripts["release"](keys=self._keys(poll), args=[reason])))

    # -- sign-ups ----------------------------------------------------------------------

    async def signup(self, talk: str, key: str, record: dict[str, Any]) -> bool:
        self._writable()
        body = orjson.dumps({k: v for k, v in record.items() if k != "key"})
        keys = [self.k(f"su:{talk}"), self.k(f"suo:{talk}"), self.k(f"sun:{talk}")]
        return bool(await self._call(self._scripts["signup"](keys=keys, args=[key, body])))

    async def signups(self, talk: str) -> list[dict[str, Any]]:
        async def read() -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrange(self.k(f"suo:{talk}"), 0, -1).hgetall(self.k(f"su:{talk}"))
                return await pipe.execute()

        order, bodies = await self._call(read())
        return [{**orjson.loads(bodies[key]), "key": key.decode()} for key in order if key in bodies]

    async def put_signup(self, talk: str, key: str, record: dict[str, Any]) -> None:
        self._writable()
        body = orjson.dumps({k: v for k, v in record.items() if k != "key"})
        if not await self._call(self._scripts["put_signup"](keys=[self.k(f"su:{talk}")], args=[key, body])):
            raise KeyError(key)
