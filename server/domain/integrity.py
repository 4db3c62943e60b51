"""Numbers the public can trust: networks, counted taps, and which votes count.

Pure: addresses, times and counts come in, decisions go out. Both stores carry
these rules out (the Redis store in a Lua script, atomically across
processes); the contract suite checks that they agree.

A vote is *counted* or *held*. Held votes are kept, never deleted, with the
reason they were held, and a host may release them while the round is open:

- `network`: the voter's network (an IPv4 /24 or IPv6 /56 by default) already
  gave `votes_per_network` counted votes in this round;
- `burst`: more than `vote_burst` devices new to the show voted the same side
  from one network within a minute.

A declared venue network is held to neither rule.
"""

import ipaddress
from dataclasses import dataclass

COUNTED, HELD = "counted", "held"
NETWORK, BURST = "network", "burst"
REASONS = (NETWORK, BURST)
BURST_WINDOW_MS = 60_000


def network_of(ip: str, v4_prefix: int = 24, v6_prefix: int = 56) -> str:
    """The network an address belongs to for budgets, e.g. "203.0.113.0/24"."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def parse_networks(cidrs: tuple[str, ...] | list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """CIDRs as networks; raises ValueError naming a bad one."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a network: {cidr!r} (write e.g. 10.20.0.0/16)") from None
    return out


def in_networks(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in networks if net.version == address.version)


def masked(network: str) -> str:
    """A network as reports show it: 203.0.113.0/24 -> 203.0.113.x"""
    if network.endswith("/24") and network.count(".") == 3:
        return network.rsplit(".", 1)[0] + ".x"
    return network


@dataclass(frozen=True, slots=True)
class VotePolicy:
    per_network: int = 150
    burst: int = 20
    young_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class Voter:
    """What the store needs to know about a device that votes."""

    network: str
    venue: bool
    first_seen_ms: int  # when the device first joined the show


@dataclass(frozen=True, slots=True)
class Ballot:
    """One device's vote in a round, as stored."""

    side: str
    status: str  # COUNTED or HELD
    reason: str  # "" or one of REASONS
    network: str

    def encode(self) -> str:
        return f"{self.side}|{self.status}|{self.reason}|{self.network}"

    @classmethod
    def decode(cls, raw: str) -> "Ballot":
        side, status, reason, network = raw.split("|", 3)
        return cls(side, status, reason, network)


def assess(
    previous: Ballot | None,
    side: str,
    voter: Voter,
    now_ms: int,
    policy: VotePolicy,
    network_counted: int,
    burst_count: int,
) -> Ballot:
    """The ballot a vote leads to. A changed vote keeps its status (a counted vote
    stays counted, a held one stays held); a new one is counted unless the
    network's budget is spent or it is part of a burst. `burst_count` is the
    number of same-side votes from young devices of this network in this minute,
    this one included (0 if the device is not young)."""
    if previous is not None:
        return Ballot(side, previous.status, previous.reason, previous.network)
    if voter.venue:
        return Ballot(side, COUNTED, "", voter.network)
    if burst_count > policy.burst:  # guard: burst
        return Ballot(side, HELD, BURST, voter.network)
    if network_counted >= policy.per_network:  # guard: network budget
        return Ballot(side, HELD, NETWORK, voter.network)
    return Ballot(side, COUNTED, "", voter.network)


def young(voter: Voter, now_ms: int, policy: VotePolicy) -> bool:
    return not voter.venue and now_ms - voter.first_seen_ms < policy.young_ms


def burst_bucket(now_ms: int) -> int:
    return now_ms // BURST_WINDOW_MS


@dataclass(slots=True)
class VoteCounts:
    """A round's votes: counted per side, held per side and per reason."""

    counted: dict[str, int]
    held: dict[str, int]
    reasons: dict[str, int]

    @classmethod
    def empty(cls) -> "VoteCounts":
        return cls({"a": 0, "b": 0}, {"a": 0, "b": 0}, {r: 0 for r in REASONS})

    def add(self, ballot: Ballot, sign: int) -> None:
        if ballot.status == COUNTED:
            self.counted[ballot.side] = self.counted.get(ballot.side, 0) + sign
        else:
            self.held[ballot.side] = self.held.get(ballot.side, 0) + sign
            self.reasons[ballot.reason] = self.reasons.get(ballot.reason, 0) + sign

    def view(self) -> dict[str, object]:
        return {"counted": dict(self.counted), "held": dict(self.held), "reasons": dict(self.reasons)}
