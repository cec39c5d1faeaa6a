"""Reads a Helm repository the way the stack needs before it installs anything: is the pinned
chart there, and what images do its default values name (so they can be pointed at the mirrors).

A chart missing from the country's mirror is the commonest air-gap failure; it is reported here
by name, version and repository, before the engine's Helm client fails with a less direct message.
"""

from __future__ import annotations

import io
import ssl
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ruamel.yaml import YAML

from stacks.design.charts import ChartPin, ChartSource


class ChartUnavailable(Exception):
    """The pinned chart cannot be had from the stack's chart repository; the message says which."""


def _fetch(url: str, ca_file: str | None) -> bytes:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise ChartUnavailable(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChartUnavailable(f"cannot read {url}: {reason}") from None


def _yaml(text: bytes | str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@lru_cache(maxsize=16)
def _index(repo: str, ca_file: str | None) -> dict[str, Any]:
    data = _yaml(_fetch(f"{repo}/index.yaml", ca_file))
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise ChartUnavailable(f"{repo}/index.yaml is not a Helm repository index")
    return data


def locate(pin: ChartPin, source: ChartSource) -> str:
    """The URL of the pinned chart's package in the repository, or a clear ChartUnavailable."""
    try:
        index = _index(source.repo, source.ca_file)
    except ChartUnavailable as exc:
        raise ChartUnavailable(f"chart {pin.name} {pin.version}: the {source.describe()} cannot be read ({exc})") from None
    entries = index["entries"].get(pin.name) or []
    for entry in entries:
        if str(entry.get("version")) == pin.version and entry.get("urls"):
            url = str(entry["urls"][0])
            return url if "://" in url else f"{source.repo}/{url}"
    have = ", ".join(sorted(str(e.get("version")) for e in entries)) or "no version of it"
    raise ChartUnavailable(
        f"chart {pin.name} {pin.version} is not in the {source.describe()} (it has {have}); "
        f"seed the mirror with {pin.name} {pin.version} from {pin.upstream}"
    )


def digest(pin: ChartPin, source: ChartSource) -> str | None:
    """The sha256 the repository's index records for the pinned package, if it records one."""
    locate(pin, source)
    for entry in _index(source.repo, source.ca_file)["entries"].get(pin.name) or []:
        if str(entry.get("version")) == pin.version:
            return str(entry["digest"]) if entry.get("digest") else None
    return None


@dataclass(frozen=True)
class ChartInfo:
    values: dict[str, Any]  # defaults, every bundled subchart's under its key, as Helm merges them
    subcharts: frozenset[str]  # names of the subcharts the package carries in charts/
    missing: tuple[str, ...]  # dependencies Chart.yaml names that charts/ lacks: Helm refuses to render it
    files: dict[str, str]  # the package's CRD files (path -> text), installable without rendering


@lru_cache(maxsize=16)
def read_chart(pin: ChartPin, source: ChartSource) -> ChartInfo:
    package = _fetch(locate(pin, source), source.ca_file)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and (member.name.endswith(("/values.yaml", "/Chart.yaml"))
                                    or ("/crds/" in member.name and member.name.endswith(".yaml"))):
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[member.name] = extracted.read()
    bundled = {name.split("/")[2] for name in files if name.count("/") == 3 and name.startswith(f"{pin.name}/charts/")
               and name.endswith("/Chart.yaml")}
    chart = _yaml(files.get(f"{pin.name}/Chart.yaml", b"")) or {}
    names = {(_yaml(files[f"{pin.name}/charts/{sub}/Chart.yaml"]) or {}).get("name", sub) for sub in bundled}
    missing = tuple(d["name"] for d in chart.get("dependencies") or [] if d.get("name") not in names)
    crds = {name: data.decode() for name, data in files.items() if "/crds/" in name}
    return ChartInfo(_values_of(pin.name, files), frozenset(bundled), missing, crds)


def _values_of(prefix: str, files: dict[str, bytes]) -> dict[str, Any]:
    values = _yaml(files.get(f"{prefix}/values.yaml", b"")) or {}
    chart = _yaml(files.get(f"{prefix}/Chart.yaml", b"")) or {}
    aliases = {d.get("name"): d.get("alias") or d.get("name") for d in chart.get("dependencies") or []}
    subcharts = {name.split("/")[-2] for name in files if name.startswith(f"{prefix}/charts/") and
                 name.count("/") == prefix.count("/") + 3 and name.endswith("/Chart.yaml")}
    for sub in sorted(subcharts):
        sub_chart = _yaml(files[f"{prefix}/charts/{sub}/Chart.yaml"]) or {}
        key = aliases.get(sub_chart.get("name"), sub_chart.get("name") or sub)
        sub_values = _values_of(f"{prefix}/charts/{sub}", files)
        current = values.get(key)
        values[key] = {**sub_values, **current} if isinstance(current, dict) else sub_values
    return values
