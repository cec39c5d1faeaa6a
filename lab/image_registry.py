"""The lab's in-country container registry: Debian's `docker-registry` (the CNCF distribution
registry) on the lab bridge, TLS with the lab's CA, seeded with images the project builds itself.

A real site's nodes pull every image from the country's registry mirror; the lab's nodes pull
from this one through containerd's `hosts.toml` (the container_runtime role writes it), so no
image comes from outside. Like the lab's apt cache, the package is unpacked into the cache, never
installed: installing it would start a host-wide daemon on every address.

Images are pushed under their upstream names (`registry.k8s.io/pause:3.10.1` is repository
`registry.k8s.io/pause`), so a mirror URL `https://<gateway>:5000/v2/registry.k8s.io` stands in for
`registry.k8s.io` exactly as a country's mirror would.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import shutil
import ssl
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab import paths
from lab.errors import LabEnvironmentError, LabError
from lab.host import run
from lab.pki import LabCA
from lab.processes import Daemon
from stacks.design import atomic
from toolchain import pins

PACKAGE = "docker-registry"
PORT = 5000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def mirror_url(gateway: str, upstream: str) -> str:
    """The URL containerd's hosts.toml names for an upstream registry, on a lab's registry."""
    return f"https://{gateway}:{PORT}/v2/{upstream}"


def pause_image() -> str:
    return f"registry.k8s.io/pause:{pins.PAUSE}"


def binary(cache: Path | None = None) -> Path:
    """docker-registry unpacked into the cache on first use (a static Go binary: no libraries)."""
    root = (cache or paths.cache_root()) / "lab" / PACKAGE
    daemon = root / "usr" / "bin" / PACKAGE
    if daemon.exists():
        return daemon
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{PACKAGE}-", dir=root.parent) as tmp:
        download = ["sh", "-c", f"cd '{tmp}' && apt-get download {PACKAGE}"]
        if run(download, what=f"apt-get download {PACKAGE}", check=False, timeout=300).returncode != 0:
            run(["apt-get", "update"], what="apt-get update", timeout=600)
            run(download, what=f"apt-get download {PACKAGE}", timeout=300)
        staging = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            run(["dpkg-deb", "-x", deb, staging], what=f"unpack {deb.name}")
        if not (staging / "usr" / "bin" / PACKAGE).exists():
            raise LabEnvironmentError(f"apt-get download {PACKAGE} produced no daemon")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    return daemon


@dataclass(frozen=True)
class Image:
    """An OCI image as blobs: what a push uploads."""

    reference: str  # upstream name, e.g. registry.k8s.io/pause:3.10.1
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> content (config and layers)

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def single_binary_image(reference: str, binary_path: Path, entrypoint: str) -> Image:
    """An image of one static binary at `entrypoint`, byte-for-byte reproducible: fixed mtimes,
    owners and gzip header, so the same binary always gives the same digest."""
    raw = io.BytesIO()
    with tarfile.TarFile(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:  # in memory
        info = tarfile.TarInfo(entrypoint.lstrip("/"))
        data = binary_path.read_bytes()
        info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o755, 0, 65535, 65535
        tar.addfile(info, io.BytesIO(data))
    layer_tar = raw.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": [entrypoint], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
        },
        sort_keys=True,
    ).encode()
    return Image(reference, manifest, {_digest(config): config, _digest(layer): layer})


class ImageRegistry:
    """One registry per lab, on <gateway>:5000; its data and log in the lab directory."""

    def __init__(self, lab: str, lab_dir: Path, gateway: str, cache: Path | None = None):
        self.lab, self.gateway, self._cache = lab, gateway, cache
        self.dir = lab_dir / "registry"
        self.daemon = Daemon("docker-registry", self.dir / "run", self.dir / "log")
        self.pki_dir = lab_dir / "kube" / "pki"  # the lab's one CA, shared with its control plane

    @property
    def url(self) -> str:
        return f"https://{self.gateway}:{PORT}"

    def mirror_for(self, upstream: str) -> str:
        """The mirror URL containerd's hosts.toml names for an upstream registry."""
        return mirror_url(self.gateway, upstream)

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    def up(self, timeout: float = 30.0) -> None:
        daemon = binary(self._cache)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = LabCA(self.pki_dir, self.lab)
        pair = ca.issue("registry", "sovereign-lab-registry", client=False, server_ips=(self.gateway,)) \
            if not (self.pki_dir / "registry.crt").is_file() else None
        cert = pair.cert if pair else self.pki_dir / "registry.crt"
        key = pair.key if pair else self.pki_dir / "registry.key"
        config = self.dir / "config.yml"
        atomic.write_file(
            config,
            json.dumps(  # JSON is YAML; the registry reads YAML
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")}, "delete": {"enabled": False}},
                    "http": {"addr": f"{self.gateway}:{PORT}", "tls": {"certificate": str(cert), "key": str(key)}},
                },
                indent=2,
            )
        )
        self.daemon.start([str(daemon), "serve", str(config)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self.daemon.pid() is None:
                raise LabError(f"the lab's registry exited while starting:\n{self.daemon.log_tail(5)}")
            time.sleep(0.2)
        raise LabError(f"the lab's registry did not answer on {self.url} within {timeout:.0f} s")

    def down(self) -> None:
        self.daemon.stop()

    def _connection(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        return http.client.HTTPSConnection(self.gateway, PORT, context=ctx, timeout=30)

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def _answers(self) -> bool:
        try:
            return self._request("GET", "/v2/")[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    def has(self, image: Image) -> bool:
        status, headers, _ = self._request(
            "HEAD", f"/v2/{image.repository}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST}
        )
        return status == 200 and headers.get("docker-content-digest") == image.digest

    def push(self, image: Image) -> bool:
        """Upload blobs and manifest (distribution API, monolithic uploads); False when the
        registry already holds exactly this image."""
        if self.has(image):
            return False
        repo = image.repository
        for digest, blob in image.blobs.items():
            if self._request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200:
                continue
            status, headers, body = self._request("POST", f"/v2/{repo}/blobs/uploads/")
            if status != 202:
                raise LabError(f"registry refused an upload to {repo}: HTTP {status} {body[:200]!r}")
            location = urlsplit(headers["location"])
            target = f"{location.path}?{location.query + '&' if location.query else ''}digest={digest}"
            status, _, body = self._request(
                "PUT", target, blob, {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))}
            )
            if status != 201:
                raise LabError(f"registry refused blob {digest[:19]} of {repo}: HTTP {status} {body[:200]!r}")
        status, _, body = self._request(
            "PUT", f"/v2/{repo}/manifests/{image.tag}", image.manifest, {"Content-Type": OCI_MANIFEST}
        )
        if status != 201:
            raise LabError(f"registry refused the manifest of {image.reference}: HTTP {status} {body[:200]!r}")
        return True

    def seed(self) -> dict[str, bool]:
        """Every image the lab's cluster needs, built here from the pinned binaries; per image,
        whether it was pushed now (False: already there)."""
        pause = pins.tools_dir() / "bin" / "pause"
        if not pause.is_file():
            raise LabEnvironmentError("not built yet: pause; run `sovereign tools install` (or `make tools`)")
        images = [single_binary_image(pause_image(), pause, "/pause")]
        return {image.reference: self.push(image) for image in images}
