"""The Debian mirror the host uses: the only place lab nodes may reach (apt over NAT)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab.errors import LabEnvironmentError

SOURCES_DIR = Path("/etc/apt/sources.list.d")
SOURCES_LIST = Path("/etc/apt/sources.list")
DEFAULT_URI = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Mirror:
    """Mirror URIs from the host's apt sources, and the IPv4 addresses their hosts resolve to."""

    uris: tuple[str, ...]
    addresses: dict[str, tuple[str, ...]]  # host -> IPv4 addresses

    @property
    def archive_uri(self) -> str:
        """The URI debootstrap uses: the first non-security one."""
        for uri in self.uris:
            if "security" not in uri:
                return uri
        return self.uris[0]

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(sorted({ip for ips in self.addresses.values() for ip in ips}))


def parse_deb822_uris(text: str) -> list[str]:
    """`URIs:` values of deb822 .sources stanzas (several may share one field)."""
    uris: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "uris":
            uris.extend(value.split())
    return uris


def parse_one_line_uris(text: str) -> list[str]:
    """URIs of classic `deb [opts] URI suite ...` lines."""
    uris: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options block, possibly several words
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if words:
            uris.append(words[0])
    return uris


def host_uris(sources_dir: Path = SOURCES_DIR, sources_list: Path = SOURCES_LIST) -> list[str]:
    """Every http(s) URI the host's apt uses, in file order, deduplicated."""
    found: list[str] = []
    for path in sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else []:
        found += parse_deb822_uris(path.read_text())
    if sources_list.is_file():
        found += parse_one_line_uris(sources_list.read_text())
    seen: dict[str, None] = {}
    for uri in found:
        if urlsplit(uri).scheme in ("http", "https"):
            seen.setdefault(uri.rstrip("/"), None)
    return list(seen) or [DEFAULT_URI]


def resolve_v4(host: str) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LabEnvironmentError(f"cannot resolve the Debian mirror {host}: {exc.strerror}") from exc
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def host_mirror() -> Mirror:
    uris = tuple(host_uris())
    hosts = dict.fromkeys(urlsplit(u).hostname or "" for u in uris)
    return Mirror(uris=uris, addresses={h: resolve_v4(h) for h in hosts if h})
