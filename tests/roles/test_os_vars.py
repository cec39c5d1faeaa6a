"""OS and architecture variables, rendered for releases the lab cannot run (its nodes are Debian 12
x86_64 containers; the Ubuntu archives are out of its reach): what nvidia_host and baseline would
use on Ubuntu 22.04/24.04 and on arm64 Grace nodes, and the early failure on anything else.

Each case runs the roles' own variable loading on the controller (connection local) with the
node's facts given as `ansible_facts`, and writes what the variables render to; nothing else runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.roles.helpers import ROLES_DIR, tool, tool_env

SITE = "https://packages.site.example"
PLAY = [
    {
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "Load nvidia_host's OS variables", "ansible.builtin.include_role": {"name": "nvidia_host", "tasks_from": "os.yml", "public": True}},
            {"name": "Load baseline's OS variables", "ansible.builtin.include_role": {"name": "baseline", "tasks_from": "os.yml", "public": True}},
            {
                "name": "Write what they render to",
                "ansible.builtin.copy": {
                    "dest": "{{ out }}",
                    "mode": "0600",
                    "content": "{{ {'cuda': nvidia_host_repository, 'toolkit': nvidia_host_container_toolkit_repository,"
                    " 'headers': __nvidia_host_headers_metapackage, 'sources_file': __baseline_apt_sources_file,"
                    " 'sources': lookup('ansible.builtin.template', roles_dir ~ '/baseline/templates/apt.sources.j2')} | to_json }}",
                },
            },
        ],
    }
]


def facts(distribution: str, version: str, release: str, architecture: str, kernel: str) -> dict[str, Any]:
    return {
        "os_family": "Debian", "distribution": distribution, "distribution_version": version,
        "distribution_major_version": version.split(".")[0], "distribution_release": release,
        "architecture": architecture, "kernel": kernel,
    }  # fmt: skip


def render(tmp: Path, node_facts: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    extra = {
        "ansible_facts": node_facts,
        "out": str(tmp / "out.json"),
        "roles_dir": str(ROLES_DIR),
        "ansible_python_interpreter": sys.executable,  # the controller's own, whatever pyenv says
        "nvidia_host_cuda_mirror": f"{SITE}/nvidia/cuda",
        "nvidia_host_container_toolkit_mirror": f"{SITE}/nvidia/libnvidia-container",
        "baseline_apt_mirrors": {
            "deb.debian.org/debian": f"{SITE}/debian",
            "security.debian.org/debian-security": f"{SITE}/debian-security",
            "archive.ubuntu.com/ubuntu": f"{SITE}/ubuntu",
            "security.ubuntu.com/ubuntu": f"{SITE}/ubuntu-security",
            "ports.ubuntu.com/ubuntu-ports": f"{SITE}/ubuntu-ports",
        },
    }
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", "localhost,", str(tmp / "play.yml"), "-e", json.dumps(extra)],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    path = tmp / "out.json"
    return out, json.loads(path.read_text()) if path.exists() else None


CASES = {
    "debian12-x86_64": (
        facts("Debian", "12.7", "bookworm", "x86_64", "6.1.0-26-amd64"),
        "debian12/x86_64", "linux-headers-amd64", "debian.sources",
        [f"URIs: {SITE}/debian", "Suites: bookworm bookworm-updates", f"URIs: {SITE}/debian-security", "Suites: bookworm-security"],
    ),
    "ubuntu2204-x86_64": (
        facts("Ubuntu", "22.04", "jammy", "x86_64", "5.15.0-122-generic"),
        "ubuntu2204/x86_64", "linux-headers-generic", "ubuntu.sources",
        [f"URIs: {SITE}/ubuntu", "Suites: jammy jammy-updates", f"URIs: {SITE}/ubuntu-security", "Suites: jammy-security",
         "Components: main restricted universe multiverse", "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg"],
    ),
    "ubuntu2404-grace-64k": (
        facts("Ubuntu", "24.04", "noble", "aarch64", "6.8.0-1015-nvidia-64k"),
        "ubuntu2404/sbsa", "linux-headers-generic-64k", "ubuntu.sources",
        [f"URIs: {SITE}/ubuntu-ports", "Suites: noble noble-updates", "Suites: noble-security"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_release_and_architecture_variables(case: str, tmp_path: Path) -> None:
    node_facts, cuda_path, headers, sources_file, source_lines = CASES[case]
    out, rendered = render(tmp_path, node_facts)
    assert rendered is not None, out.stdout[-3000:]
    assert rendered["cuda"]["url"] == f"{SITE}/nvidia/cuda/{cuda_path}/"
    assert rendered["cuda"]["key_url"] == f"{SITE}/nvidia/cuda/{cuda_path}/3bf863cc.pub"
    assert rendered["toolkit"]["url"] == f"{SITE}/nvidia/libnvidia-container/stable/deb/$(ARCH)"
    assert rendered["headers"] == headers
    assert rendered["sources_file"] == f"/etc/apt/sources.list.d/{sources_file}"
    for line in source_lines:
        assert line in rendered["sources"], rendered["sources"]
    assert "ubuntu" not in rendered["sources"] if node_facts["distribution"] == "Debian" else "debian" not in rendered["sources"]


@pytest.mark.parametrize(
    "node_facts",
    [facts("Rocky", "9.4", "Blue Onyx", "x86_64", "5.14.0"), facts("Debian", "11.9", "bullseye", "x86_64", "5.10.0-28-amd64"),
     facts("Ubuntu", "24.04", "noble", "ppc64le", "6.8.0-45-generic")],
    ids=["rocky9", "debian11", "ubuntu-ppc64le"],
)
def test_an_unsupported_os_fails_before_anything_changes(node_facts: dict[str, Any], tmp_path: Path) -> None:
    out, rendered = render(tmp_path, node_facts)
    assert out.returncode != 0 and rendered is None
    assert "nvidia_host supports Debian-12, Ubuntu-22, Ubuntu-24 on x86_64, aarch64" in out.stdout
    assert f"runs {node_facts['distribution']} {node_facts['distribution_version']} on {node_facts['architecture']}" in out.stdout
