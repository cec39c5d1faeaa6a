"""The environment the Pulumi engine runs in: pinned tools, offline settings, a file backend.

`sovereign up` passes this to the Automation API; `sovereign tools env` prints it as shell
exports, so `pulumi up -s <stack>` by hand behaves exactly like `sovereign up`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from toolchain import build, pins

# Lab and staging stacks only: their secrets are lab credentials, recreated with every lab.
# Production stacks bring their own secrets provider and passphrase (PULUMI_CONFIG_PASSPHRASE).
LAB_PASSPHRASE = "sovereign-lab-only"


@dataclass(frozen=True)
class ToolStatus:
    name: str
    path: Path
    present: bool


def status() -> list[ToolStatus]:
    root = pins.tools_dir()
    return [ToolStatus(step.name, root / step.outputs[0], not build.missing(step, root)) for step in build.STEPS]


def bin_dir() -> Path:
    return pins.tools_dir() / "bin"


def pulumi_home() -> Path:
    return pins.tools_dir() / "pulumi-home"


def engine_env(backend_dir: Path, *, lab: bool) -> dict[str, str]:
    """Variables for the engine and its plugins. The passphrase is set for lab/staging runs only."""
    backend_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(pulumi_home()),
        "PULUMI_BACKEND_URL": backend_dir.resolve().as_uri(),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        # The policy pack names no virtualenv (it ships inside the package): it runs with this
        # interpreter, which has pulumi-policy installed as a dependency of sovereign.
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    if lab and "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        env["PULUMI_CONFIG_PASSPHRASE"] = LAB_PASSPHRASE
    return env


def ensure_plugins() -> None:
    """Register the built kubernetes plugin in PULUMI_HOME (the engine never downloads plugins here)."""
    installed = pulumi_home() / "plugins" / f"resource-kubernetes-v{pins.K8S_PLUGIN}"
    if (installed / "pulumi-resource-kubernetes").is_file():
        return
    binary = pins.tools_dir() / "plugins" / "pulumi-resource-kubernetes"
    if not binary.is_file():
        raise build.ToolchainError("the kubernetes provider plugin is not built: run `sovereign tools install`")
    pulumi = shutil.which("pulumi", path=str(bin_dir()))
    if pulumi is None:
        raise build.ToolchainError("the Pulumi CLI is not built: run `sovereign tools install`")
    result = subprocess.run(
        [pulumi, "plugin", "install", "resource", "kubernetes", f"v{pins.K8S_PLUGIN}", "--file", str(binary)],
        env={**os.environ, "PULUMI_HOME": str(pulumi_home()), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise build.ToolchainError(f"installing the kubernetes plugin failed: {result.stderr.strip()[-2000:]}")


ENGINE_TOOLS = ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")


def require_tools() -> None:
    """A clear error (not a traceback from the engine) when a tool the engine needs is missing."""
    absent = [s.name for s in status() if not s.present and s.name in ENGINE_TOOLS]
    if absent:
        raise build.ToolchainError(f"not built yet: {', '.join(absent)}; run `sovereign tools install` (or `make tools`)")
    ensure_plugins()


def shell_exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={_quote(value)}" for key, value in env.items())


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"
