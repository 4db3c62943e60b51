"""One process's view of every show it serves: replicas, handlers, commands, the tick."""

from ..store import Conflict, StateLost, StoreUnavailable
from .node import Node, device_hash
from .replica import Runtime, now_ms, snapshot

__all__ = ["Conflict", "Node", "Runtime", "StateLost", "StoreUnavailable", "device_hash", "now_ms", "snapshot"]
