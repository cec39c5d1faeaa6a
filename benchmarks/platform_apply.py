"""The platform layer's `up` against the physical floor, on 64, 256 and 1,024 simulated GPU nodes.

    .venv/bin/python benchmarks/platform_apply.py [--nodes 64 256 1024]

For each size, on a fresh lab (Kubernetes only, its own state root): `sovereign up` of ke-staging
by the real engine (policy pack included), a no-change `preview`, the state's size; then `destroy`
and a plain server-side apply of the very objects the engine applied (read from its state), in
dependency order, waiting for the same readiness the engine awaits (CRDs established, Deployments
and DaemonSets ready) — the floor no tool can beat. Prints times and ratios.
Targets (issue 11): up ≤ 1.5× the raw apply; no-change preview ≤ 20 s at 1,024 nodes; state O(1) per node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from lab.kubeapi import ApiError, KubeApi

STACK = "ke-staging"
FIELD_MANAGER = "benchmark-raw-apply"


def _objects(state: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for resource in state.get("resources") or []:
        kind = resource.get("type", "")
        if not kind.startswith("kubernetes:") or kind.startswith(("kubernetes:helm.sh", "pulumi:providers")):
            continue
        if kind.startswith("kubernetes:yaml"):
            continue
        obj = {k: v for k, v in (resource.get("inputs") or {}).items() if not k.startswith("__")}
        if obj.get("kind") and obj.get("apiVersion"):
            objects.append(obj)
    return objects


def _path(api: KubeApi, obj: dict[str, Any], plurals: dict[tuple[str, str], tuple[str, bool]]) -> str:
    group_version = obj["apiVersion"]
    plural, namespaced = plurals[(group_version, obj["kind"])]
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    ns = obj["metadata"].get("namespace")
    scope = f"/namespaces/{ns}" if namespaced and ns else ""
    return f"{base}{scope}/{plural}/{obj['metadata']['name']}"


def _discover(api: KubeApi) -> dict[tuple[str, str], tuple[str, bool]]:
    found: dict[tuple[str, str], tuple[str, bool]] = {}
    versions = [("v1", "/api/v1")]
    for group in api.get("/apis")["groups"]:
        for version in group["versions"]:
            versions.append((version["groupVersion"], f"/apis/{version['groupVersion']}"))
    for group_version, path in versions:
        try:
            resources = api.get(path)["resources"]
        except ApiError:
            continue
        for r in resources:
            if "/" not in r["name"]:
                found[(group_version, r["kind"])] = (r["name"], r["namespaced"])
    return found


def raw_apply(api: KubeApi, objects: list[dict[str, Any]], timeout: float = 900) -> float:
    """Server-side apply of every object, CRDs and namespaces first, retrying what waits on a CRD."""
    started = time.monotonic()
    order = sorted(objects, key=lambda o: (o["kind"] != "CustomResourceDefinition", o["kind"] != "Namespace"))
    pending = list(order)
    while pending:
        plurals = _discover(api)
        left = []
        for obj in pending:
            key = (obj["apiVersion"], obj["kind"])
            if key not in plurals:
                left.append(obj)
                continue
            path = _path(api, obj, plurals) + f"?fieldManager={FIELD_MANAGER}&force=true"
            try:
                api.request("PATCH", path, obj, content_type="application/apply-patch+yaml")
            except ApiError:
                left.append(obj)
        if left and time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(left)} objects could not be applied, e.g. {left[0]['kind']} {left[0]['metadata']}")
        if left:
            time.sleep(0.5)
        pending = left
    _wait_ready(api, objects, started + timeout)
    return time.monotonic() - started


def _wait_ready(api: KubeApi, objects: list[dict[str, Any]], deadline: float) -> None:
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        if kind not in ("Deployment", "DaemonSet"):
            continue
        path = f"/apis/apps/v1/namespaces/{meta['namespace']}/{kind.lower()}s/{meta['name']}"
        while time.monotonic() < deadline:
            status = api.get(path).get("status", {})
            if kind == "Deployment" and status.get("readyReplicas", 0) >= api.get(path)["spec"].get("replicas", 1):
                break
            if kind == "DaemonSet" and status.get("desiredNumberScheduled", -1) == status.get("numberReady"):
                break
            time.sleep(0.5)


def measure(nodes: int) -> dict[str, Any]:
    from lab.site_lab import SiteLab
    from stacks import automation

    state = Path(tempfile.mkdtemp(prefix="sovbench-", dir="/tmp"))
    os.environ["SOVEREIGN_STATE"] = str(state)
    name = f"bench{nodes}"
    lab = SiteLab(name, state_root=state)
    try:
        lab.up(stack=STACK, gpu_nodes=nodes, ssh_nodes=0)
        started = time.monotonic()
        automation.run("up", STACK, lab=name, allow_unapproved=True)
        up_s = time.monotonic() - started
        started = time.monotonic()
        automation.run("preview", STACK, lab=name, allow_unapproved=True, expect_no_changes=True)
        preview_s = time.monotonic() - started
        checkpoints = list((state / "pulumi" / ".pulumi" / "stacks").rglob(f"{STACK}.json"))
        state_bytes = checkpoints[0].stat().st_size
        deployment = json.loads(checkpoints[0].read_text())["checkpoint"]["latest"]
        objects = _objects(deployment)
        automation.run("destroy", STACK, lab=name)
        raw_s = raw_apply(lab.control_plane.api(), objects)
        return {"nodes": nodes, "up_s": up_s, "preview_s": preview_s, "raw_s": raw_s, "objects": len(objects),
                "state_kib": state_bytes / 1024}
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[64, 256, 1024])
    args = parser.parse_args()
    print(f"{'GPU nodes':>9} {'objects':>7} {'up s':>7} {'raw SSA s':>9} {'up/raw':>6} {'no-change preview s':>19} "
          f"{'state KiB':>9}")
    rows = []
    for nodes in args.nodes:
        row = measure(nodes)
        rows.append(row)
        print(f"{row['nodes']:>9} {row['objects']:>7} {row['up_s']:>7.1f} {row['raw_s']:>9.1f} "
              f"{row['up_s'] / row['raw_s']:>6.2f} {row['preview_s']:>19.1f} {row['state_kib']:>9.0f}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"state growth {first['nodes']}→{last['nodes']} nodes: ×{last['state_kib'] / first['state_kib']:.2f} "
              f"(nodes ×{last['nodes'] / first['nodes']:.0f})")


if __name__ == "__main__":
    main()
