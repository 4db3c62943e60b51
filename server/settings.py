"""Settings from the environment. Every limit is here, with its default.

The README's settings and limits tables list the same names.
"""

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .domain import LIMITS, TextLimits


def _env(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if cast is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return cast(raw)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = ""
    redis_prefix: str = "lt"
    redis_wait_replicas: int = 0  # acked writes wait until this many replicas have them (WAIT)
    redis_wait_ms: int = 500  # how long they wait before answering `unavailable`
    redis_allow_no_persistence: bool = False  # serve on a Redis with neither AOF nor RDB snapshots
    redis_accept_new_state: bool = False  # take Redis's state (or start one) though DATA_DIR knew another
    data_dir: str = "./data"
    host_token: str = ""
    secret_key: str = ""
    allowed_origins: tuple[str, ...] = ()
    public_url: str = ""
    allowed_hosts: tuple[str, ...] = ()  # hosts whose pages may open sockets and POST ("name" or "name:port")
    workers: int = 1
    backlog: int = 16384  # listen queue: a reconnect storm arrives at once (the kernel caps it at somaxconn)
    log_level: str = "info"
    log_format: str = "json"
    log_sockets: bool = False  # log every WebSocket opened and closed (uvicorn's lines)
    # timing
    tick_ms: int = 100
    phone_tick_ms: int = 500
    sample_s: int = 10
    gc_threshold0: int = 100_000
    # socket limits
    max_frame_bytes: int = 4096
    ws_max_size: int = 65536
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0
    first_message_timeout_s: float = 10.0
    client_buffer_bytes: int = 512 * 1024
    socket_sndbuf: int = 64 * 1024
    sockets_per_device: int = 8
    sockets_per_ip: int = 2000
    overlays_per_ip: int = 4  # overlay sockets without the show's key, per address
    connect_rate: float = 1.0  # new sockets per device per second (a reconnect loop is refused 1013)
    connect_burst: float = 10.0
    resume_frames: int = 512  # per show and stream: frames kept so that a client that comes back resumes
    # connections (server/edge.py): before any request is read, per process
    header_timeout_s: float = 10.0  # complete request headers within this, or the connection is closed
    connections_per_ip: int = 2500  # open HTTP + WebSocket connections per peer address (0: no cap)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies trusted for X-Forwarded-For; not capped per address
    # text limits
    question_max: int = LIMITS.question
    name_max: int = LIMITS.name
    topic_max: int = LIMITS.topic
    # per-device rates (shared by the device's sockets, across processes in Redis mode)
    frame_rate: float = 30.0  # every client frame, answered or not
    frame_burst: float = 60.0
    like_rate: float = 15.0  # taps counted per second (a person taps ~10/s)
    like_burst: float = 60.0
    question_interval_s: float = 10.0
    vote_rate: float = 2.0
    vote_burst: float = 5.0
    upvote_rate: float = 2.0
    upvote_burst: float = 10.0
    console_rate: float = 20.0
    console_burst: float = 40.0
    flood_strikes: int = 50
    # bounded snapshots and memory (docs/reliability.md, "Four hours on air")
    snapshot_questions: int = 50  # public questions in a snapshot (and per questions.page); older ones on demand
    console_queue_max: int = 1000  # pending/approved/featured questions in a console's snapshot
    page_rate: float = 2.0  # questions.page requests per device per second
    page_burst: float = 10.0
    show_unload_s: float = 300.0  # an ended show without sockets is unloaded after this (0: never)
    ended_retention_s: int = 30 * 24 * 3600  # Redis: an ended show's keys expire this long after its unload (0: kept)
    redis_max_connections: int = 32  # per process and client; 0: no bound (redis-py's default)
    redis_pool_idle_s: float = 60.0  # idle Redis connections are closed this often (0: never)
    reply_cache_bytes: int = 4 * 1024 * 1024
    reply_ttl_s: int = 600  # the phone page's retries of one message end within ~2 minutes
    # devices and votes (docs/reliability.md, "Integrity")
    venue_networks: tuple[str, ...] = ()
    network_prefix_v4: int = 24
    network_prefix_v6: int = 56
    device_pow_cost: int = 20000  # PBKDF2 iterations per try of a new device's proof of work (about 1 s on a phone)
    device_pow_free: int = 50  # new devices per network per hour before the work grows
    device_pow_max_factor: int = 16
    device_mint_rate: float = 2.0  # solved challenges checked per network per second (each costs a derivation)
    device_mint_burst: float = 20.0
    vote_min_watch_s: float = 20.0
    votes_per_network: int = 150  # counted votes per network per round, outside venues
    vote_burst_max: int = 20  # same-side votes per network per minute from devices new to the show
    vote_young_s: int = 600
    floor_warn_share: float = 0.2  # the console warns when one side has spoken this much more (of the two)
    # sessions
    session_max_age_s: int = 12 * 3600
    session_check_s: float = 1.0  # how often each process re-reads which sessions were ended (web/sessions.py)
    login_failures_per_ip: int = 5  # failed sign-ins per address per minute, then 429 for the rest of it
    login_failures_per_minute: int = 50  # failed sign-ins from all addresses together, then 429 for everyone
    device_max_age_s: int = 365 * 24 * 3600
    # storage
    sqlite_synchronous: str = "NORMAL"
    timeline_max: int = 1_000_000
    outage_likes_max: int = 10_000_000
    viewer_ttl_s: int = 15
    reject_flagged: bool = False
    # the season: roster, polls, talk requests (docs/season.md)
    contact_retention_days: int = 30  # a request's contact data is erased this long after it is done or declined
    season_sweep_s: float = 3600.0  # how often the erasure sweep runs
    photo_max_bytes: int = 5 * 1024 * 1024  # an uploaded guest photo
    photo_px: int = 480  # the stored photo's longest side
    poll_vote_rate: float = 1.0  # poll ballots per device per second
    poll_vote_burst: float = 5.0
    requests_per_network: int = 20  # talk requests per network per hour
    signups_per_network: int = 60  # talk sign-ups per network per hour

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        values: dict[str, Any] = {}
        for f in fields(cls):
            default = f.default
            if isinstance(default, tuple):  # comma-separated lists
                raw = os.environ.get(f.name.upper(), "")
                values[f.name] = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
                continue
            cast = type(default)
            values[f.name] = _env(f.name.upper(), default, cast)
        values.update(overrides)
        return cls(**values)

    @property
    def text_limits(self) -> TextLimits:
        return TextLimits(question=self.question_max, name=self.name_max, topic=self.topic_max)

    @property
    def gc_thresholds(self) -> tuple[int, int, int]:
        return (self.gc_threshold0, 50, 100)

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def data_path(self) -> Path:
        path = Path(self.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _kept(self, given: str, name: str, nbytes: int) -> tuple[str, bool]:
        """`given`, or a random value made once and kept (mode 600) in DATA_DIR/name;
        and whether it was made just now."""
        if given:
            return given, False
        path = self.data_path() / name
        made = False
        if not path.exists():
            path.write_text(secrets.token_urlsafe(nbytes))
            path.chmod(0o600)
            made = True
        return path.read_text().strip(), made

    def resolved_secret(self) -> str:
        """SECRET_KEY, or one made once and kept in DATA_DIR."""
        return self._kept(self.secret_key, "secret_key", 32)[0]

    def resolved_host_token(self) -> str:
        """HOST_TOKEN, or one made once and kept in DATA_DIR."""
        return self._kept(self.host_token, "host_token", 12)[0]

    def made_host_token(self) -> tuple[str, bool]:
        """The host token, and whether it was made just now (then, and only then, it is shown)."""
        return self._kept(self.host_token, "host_token", 12)
