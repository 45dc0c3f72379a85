"""Operator-maintained metadata: address / hostname / zone name -> labels (datacenter, role, owner...).

TOML form:
    [[host]]
    match = "10.1.2.3"          # an address, a CIDR, a host name, or a zone name
    labels = { datacenter = "ams1", role = "compute" }

CSV form (header row required): match,datacenter,role,... — every column but `match` is a label.
"""

from __future__ import annotations

import csv
import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path


class StaticMapError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StaticMap:
    by_name: dict[str, dict[str, str]]
    by_network: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, dict[str, str]]]

    @classmethod
    def empty(cls) -> StaticMap:
        return cls({}, [])

    @classmethod
    def load(cls, path: str | Path) -> StaticMap:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise StaticMapError(f"{p}: cannot read: {exc.strerror}") from None
        rows: list[tuple[str, dict[str, str]]] = []
        if p.suffix.lower() == ".csv":
            reader = csv.DictReader(text.splitlines())
            if not reader.fieldnames or "match" not in reader.fieldnames:
                raise StaticMapError(f"{p}: the CSV header must have a 'match' column")
            for n, row in enumerate(reader, start=2):
                key = (row.pop("match") or "").strip()
                if not key:
                    raise StaticMapError(f"{p}: line {n}: empty 'match'")
                rows.append((key, {k: v for k, v in row.items() if k and v}))
        else:
            try:
                table = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise StaticMapError(f"{p}: not valid TOML: {exc}") from None
            for i, entry in enumerate(table.get("host", [])):
                key, labels = entry.get("match"), entry.get("labels", {})
                if not isinstance(key, str) or not isinstance(labels, dict):
                    raise StaticMapError(f'{p}: host[{i}]: needs match = "..." and labels = {{...}}')
                rows.append((key, {str(k): str(v) for k, v in labels.items()}))
        by_name: dict[str, dict[str, str]] = {}
        by_network = []
        for key, labels in rows:
            try:
                by_network.append((ipaddress.ip_network(key, strict=False), labels))
            except ValueError:
                by_name[key.lower()] = labels
        by_network.sort(key=lambda item: item[0].prefixlen, reverse=True)  # most specific first
        return cls(by_name, by_network)

    def lookup(self, *, ip: str | None = None, names: tuple[str, ...] = ()) -> dict[str, str]:
        """Labels for a sender: network matches first (least specific first), names override."""
        out: dict[str, str] = {}
        if ip:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                addr = None
            if addr is not None:
                for net, labels in reversed(self.by_network):
                    if addr.version == net.version and addr in net:
                        out.update(labels)
        for name in names:
            if name and name.lower() in self.by_name:
                out.update(self.by_name[name.lower()])
        return out
