"""One Kubernetes lab (control plane + 64 simulated GPU nodes of ke-staging) for this package,
with its own state root, so its Pulumi backend and lab files go with it."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.kubeapi import KubeApi
from lab.site_lab import SiteLab
from toolchain.build import install


@dataclass
class KubeLabHandle:
    name: str
    state: Path
    lab: SiteLab
    api: KubeApi
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)  # every CLI output, for the secrets check


@pytest.fixture(scope="package")
def kube_lab() -> Iterator[KubeLabHandle]:
    install()  # builds what is missing (cached in ~/.cache/sovereign); a build failure fails the tier
    state = Path(tempfile.mkdtemp(prefix="sovkube-", dir="/tmp"))
    name = f"k{secrets.token_hex(3)}"
    env = {**os.environ, "SOVEREIGN_STATE": str(state)}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    lab = SiteLab(name, state_root=state)
    try:
        lab.up(stack="ke-staging", gpu_nodes=64, ssh_nodes=0)
        yield KubeLabHandle(name, state, lab, lab.control_plane.api(), env)
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)
