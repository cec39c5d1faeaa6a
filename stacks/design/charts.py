"""The platform's charts, where they come from, and how their images are pointed at the mirrors.

Pure: no I/O. Each chart is pinned by name and version (the versions of the upstream charts the
project is tested with); on a site with `sovereignty.chart_mirror` it comes from that in-country
repository, otherwise from its public upstream repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stacks.design.partnership import Sovereignty


@dataclass(frozen=True)
class ChartPin:
    name: str
    version: str
    upstream: str  # the public Helm repository it is published in


GPU_OPERATOR = ChartPin("gpu-operator", "v26.3.3", "https://helm.ngc.nvidia.com/nvidia")
NETWORK_OPERATOR = ChartPin("network-operator", "26.4.1", "https://helm.ngc.nvidia.com/nvidia")
KUBE_PROMETHEUS_STACK = ChartPin("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts")
CHARTS = (GPU_OPERATOR, NETWORK_OPERATOR, KUBE_PROMETHEUS_STACK)


@dataclass(frozen=True)
class ChartSource:
    """Where a stack pulls its charts from, and the CA that repository's certificate chains to."""

    repo: str
    ca_file: str | None
    mirrored: bool

    def describe(self) -> str:
        return f"{'chart mirror' if self.mirrored else 'upstream repository'} {self.repo}"


def chart_source(pin: ChartPin, sovereignty: Sovereignty, *, mirror_override: str | None = None,
                 ca_file: str | None = None) -> ChartSource:
    """The repository for one chart: the lab's stand-in mirror, else the partnership's mirror,
    else the chart's public repository."""
    mirror = mirror_override or sovereignty.chart_mirror
    if mirror:
        return ChartSource(mirror.rstrip("/"), ca_file, True)
    return ChartSource(pin.upstream, ca_file, False)


def registry_mirrors(sovereignty: Sovereignty) -> dict[str, str]:
    """Upstream registry host -> image prefix of its in-country mirror (scheme dropped), e.g.
    nvcr.io -> registry.ai.go.ke/nvcr."""
    return {m.upstream: m.mirror.split("://", 1)[1].rstrip("/") for m in sovereignty.registries}


def allowed_image_prefixes(sovereignty: Sovereignty) -> list[str]:
    """Images may come only from these prefixes (each ends in '/', so a look-alike host fails)."""
    return sorted({f"{prefix}/" for prefix in registry_mirrors(sovereignty).values()})


def mirror_image(image: str, mirrors: Mapping[str, str]) -> str:
    """An image reference rewritten onto its mirror; Docker Hub's implicit host included."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", image if rest else f"library/{image}"
    target = mirrors.get(host)
    return f"{target}/{path}" if target else image


def _mirror_repository(repo: str, mirrors: Mapping[str, str]) -> str | None:
    """A values `repository` (host/path, or a path under an implied Docker Hub) on its mirror."""
    first, _, rest = repo.partition("/")
    if "." in first or ":" in first:
        return f"{mirrors[first]}/{rest}" if first in mirrors and rest else None
    return None


def mirror_values(defaults: Mapping[str, Any], mirrors: Mapping[str, str]) -> dict[str, Any]:
    """Overrides that point every image a chart's default values name at the country's mirrors.

    Charts spell images three ways: `{registry: quay.io, repository: prometheus/prometheus}`,
    `{repository: nvcr.io/nvidia, image: gpu-operator}` and a plain `image: host/path:tag`
    string; each is rewritten. Only changed leaves are returned, so they merge over the stack's
    own values. Images a chart hard-codes in a template are not reachable here: the admission
    policy rejects them, and `sovereign artifacts` lists what the rendered objects reference.
    """
    out: dict[str, Any] = {}
    for key, value in defaults.items():
        if isinstance(value, Mapping):
            registry = value.get("registry")
            repository = value.get("repository")
            changed: dict[str, Any] = {}
            if isinstance(registry, str) and registry in mirrors:
                changed["registry"] = mirrors[registry]
            elif isinstance(repository, str) and repository:
                moved = _mirror_repository(repository, mirrors)
                if moved is not None:
                    changed["repository"] = moved
            nested = mirror_values(value, mirrors)
            merged = {**nested, **changed}
            if merged:
                out[key] = merged
        elif isinstance(value, str) and "image" in key.lower() and "/" in value and not key.lower().endswith("policy"):
            moved_image = mirror_image(value, mirrors)
            if moved_image != value:
                out[key] = moved_image
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
