"""SSH to lab nodes: keys, readiness, commands, and closing the ControlMasters we caused."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.errors import LabError
from lab.host import run
from lab.lxc import kill_matching
from lab.spec import LabSpec, Node


def keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair at `path` (kept when it already exists)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], what="ssh-keygen")


def argv(spec: LabSpec, node: Node, command: str, *, share: bool = True) -> list[str]:
    """ssh argv through the lab's ssh_config; `share=False` bypasses the ControlMaster."""
    mux = [] if share else ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    return ["ssh", "-F", str(spec.ssh_config), "-o", "BatchMode=yes", *mux, node.name, command]


def run_on(
    spec: LabSpec,
    node: Node,
    command: str,
    *,
    timeout: float = 60,
    input: str | None = None,
    share: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a shell command on a node; the caller checks returncode."""
    return run(argv(spec, node, command, share=share), check=False, timeout=timeout, input=input)


def port_open(ip: str, port: int = 22, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_one(spec: LabSpec, node: Node, deadline: float) -> str | None:
    """None once `ssh node true` succeeds; else the last error when the deadline passes."""
    error = "sshd never listened"
    while time.monotonic() < deadline:
        if port_open(node.ip):
            proc = run_on(spec, node, "true", timeout=10, share=False)
            if proc.returncode == 0:
                return None
            error = (proc.stderr.strip().splitlines() or [f"ssh exit {proc.returncode}"])[-1]
        time.sleep(0.2)
    return error


def wait_ready(spec: LabSpec, nodes: Iterable[Node], timeout: float) -> None:
    """Block until SSH answers on every node, checking them in parallel."""
    nodes = list(nodes)
    if not nodes:
        return
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        errors = dict(zip([n.name for n in nodes], pool.map(lambda n: _wait_one(spec, n, deadline), nodes)))
    failed = [n for n in nodes if errors[n.name]]
    if failed:
        node = failed[0]
        logs = spec.node_dir(node)
        raise LabError(
            f"{node.name} ({node.ip}): no SSH after {timeout:.0f} s ({errors[node.name]}); "
            f"see {logs / 'lxc.log'} and {logs / 'console.log'}"
            + (f" ({len(failed) - 1} more node(s) failed too)" if len(failed) > 1 else "")
        )


def close_masters(spec: LabSpec, node: Node | None = None) -> None:
    """Ask each ControlMaster of the lab (or of one node) to exit, then kill any that would not."""
    pattern = f"cm-*@{node.ip}:*" if node else "cm-*"
    for sock in spec.control_dir.glob(pattern) if spec.control_dir.is_dir() else []:
        run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab-node"], check=False, timeout=10)
        sock.unlink(missing_ok=True)
    # A master's title is `ssh: <socket> [mux]`: finding it by path touches only our own.
    kill_matching("ssh", f"{spec.control_dir}/cm-root@{node.ip}:" if node else f"{spec.control_dir}/cm-")
