"""The pinned tool versions, and where their builds are cached.

PyPI ships only Pulumi's SDKs; the engine, the Python language host, the kubernetes provider
plugin and the Kubernetes binaries are built from the Go module proxy at these versions. The
kubernetes plugin version must equal the `pulumi-kubernetes` SDK pinned in pyproject.toml: the
engine loads exactly the plugin version the SDK asks for.
"""

from __future__ import annotations

import os
from pathlib import Path

PULUMI = "3.274.1"  # pulumi CLI: github.com/pulumi/pulumi/pkg/v3 + sdk/v3
K8S_PLUGIN = "4.25.0"  # pulumi-resource-kubernetes == PyPI pulumi-kubernetes
# The one provider/v4 version the proxy serves (tag v4.25.0), as a pseudo-version.
K8S_PROVIDER_MODULE = "v4.0.0-20260115033456-f47bc2d6f199"
# The provider's go.mod replaces sdk/v4 with ../sdk; 4.29+ drags sdk/v3 past what pkg/v3 compiles with.
K8S_SDK = "4.22.2"
KUBERNETES = "1.34.2"  # kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
ETCD = "3.6.16"
KWOK = "0.8.0"
# promtool (github.com/prometheus/prometheus/cmd/promtool) tests the alert rules; a newer pin
# means deleting bin/promtool from the cache (it is not part of PINS_ID, so the others stay).
PROMETHEUS = "0.316.0"
# The pod sandbox image tag, as upstream's build/pause/Makefile of KUBERNETES names it.
PAUSE = "3.10.1"

PINS_ID = f"p{PULUMI}-k{K8S_PLUGIN}-kube{KUBERNETES}-e{ETCD}-kwok{KWOK}"


def cache_root() -> Path:
    return Path(os.environ.get("SOVEREIGN_CACHE") or Path.home() / ".cache" / "sovereign")


def tools_dir() -> Path:
    """Everything built for one set of pins: bin/, plugins/, src/, log/, pulumi-home/."""
    return cache_root() / "tools" / PINS_ID


def go_cache_dirs() -> dict[str, str]:
    """Go's module and build caches, shared by every set of pins (a pin bump rebuilds only what changed)."""
    go = cache_root() / "go"
    return {"GOMODCACHE": str(go / "mod"), "GOCACHE": str(go / "build"), "GOPATH": str(go / "path")}
