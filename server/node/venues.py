"""Declared venue networks: the `VENUE_NETWORKS` setting and each show's own list
(set from the console). A phone on one is not held to per-network budgets."""

import ipaddress

from ..domain.integrity import in_networks, network_of, parse_networks
from ..settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Venues:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fixed = parse_networks(settings.venue_networks)
        self._parsed: dict[tuple[str, ...], list[Network]] = {}

    def contains(self, ip: str, show_venues: list[str]) -> bool:
        if in_networks(ip, self.fixed):
            return True
        if not show_venues:
            return False
        key = tuple(show_venues)
        networks = self._parsed.get(key)
        if networks is None:
            if len(self._parsed) > 64:
                self._parsed.clear()
            networks = self._parsed[key] = parse_networks(list(key))
        return in_networks(ip, networks)

    def network(self, ip: str) -> str:
        return network_of(ip, self.settings.network_prefix_v4, self.settings.network_prefix_v6)
