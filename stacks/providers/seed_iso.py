"""SeedIso: one node's install seed rendered and packed as a NoCloud ISO (volume label `cidata`) with
Debian's xorriso, written to the site's artifact directory and served by its artifact server (a
dynamic provider).

The inputs are what the seed is rendered from (stacks.design.seed.seed_context: hostname,
addresses, admins' keys, mirrors, call-back) and the templates' digest, so a change in a node's
seed is a reviewable diff in `preview` (the changed value, property by property; a changed template
is a changed digest on every seed) and `up` renders and repacks it. Neither the inputs nor the
outputs keep the rendered text (about 3 KB a node): the local backend rewrites every byte of the
state at each step of a run. The outputs keep the files' digest, to find a changed rendering.
Seeds hold no secrets (SSH public keys only). The ISO's SHA-256 is an output: the BMC is given the
URL, the checksum is kept to verify what was served.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from stacks.design.seed import render_files


class SeedError(Exception):
    pass


def pack_seed(files: dict[str, str], target: Path) -> str:
    """Write the ISO atomically; return its SHA-256."""
    xorriso = shutil.which("xorriso")
    if xorriso is None:
        raise SeedError("xorriso is missing: install the Debian package xorriso (`make bmc-tools`)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".seed-") as work:
        source = Path(work) / "cidata"
        source.mkdir()
        for name, text in sorted(files.items()):
            (source / name).write_text(text)
        tmp = Path(work) / "seed.iso"
        result = subprocess.run(
            [xorriso, "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-o", str(tmp), str(source)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise SeedError(f"xorriso failed packing {target.name}: {result.stderr.strip()[-500:]}")
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, target)
    return digest


def files_digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _pack(props: dict[str, Any]) -> dict[str, Any]:
    name = f"{props['name']}-seed.iso"
    files = render_files(props["seed"])
    sha = pack_seed(files, Path(props["artifacts_dir"]) / "seeds" / name)
    return {"name": props["name"], "artifacts_dir": props["artifacts_dir"], "artifacts_url": props["artifacts_url"],
            "files_sha256": files_digest(files), "url": f"{props['artifacts_url']}/seeds/{name}", "sha256": sha}


class SeedIsoProvider(ResourceProvider):
    serialize_as_secret_always = False  # captures nothing secret (see RedfishMachineProvider)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(props["name"], _pack(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # olds are the outputs: the digest, or the files themselves in a state from before it
        old_files = olds.get("files_sha256") or files_digest(olds.get("files") or {})
        changed = [k for k in ("artifacts_dir", "artifacts_url") if olds.get(k) != news.get(k)]
        if not isinstance(news.get("seed"), dict) or old_files != files_digest(render_files(news["seed"])):
            changed.append("seed")
        missing = not (Path(olds.get("artifacts_dir", "/nonexistent")) / "seeds" / f"{olds.get('name')}-seed.iso").is_file()
        return DiffResult(changes=bool(changed) or missing, replaces=[], stables=["name"], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(_pack(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        (Path(props["artifacts_dir"]) / "seeds" / f"{props['name']}-seed.iso").unlink(missing_ok=True)


class SeedIso(Resource):
    url: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(SeedIsoProvider(), f"{name}-seed", {**props, "name": name, "url": None, "sha256": None}, opts)
