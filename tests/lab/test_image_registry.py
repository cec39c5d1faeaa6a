"""Fast tier: the OCI images the lab's registry is seeded with, built without any registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from lab.image_registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, single_binary_image


def _binary(tmp_path: Path, content: bytes = b"\x7fELF pretend static binary") -> Path:
    path = tmp_path / "pause"
    path.write_bytes(content)
    return path


def test_an_image_is_reproducible(tmp_path: Path) -> None:
    first = single_binary_image("registry.k8s.io/pause:3.10.1", _binary(tmp_path), "/pause")
    second = single_binary_image("registry.k8s.io/pause:3.10.1", _binary(tmp_path), "/pause")
    assert first.digest == second.digest and first.blobs == second.blobs
    changed = single_binary_image("registry.k8s.io/pause:3.10.1", _binary(tmp_path, b"other"), "/pause")
    assert changed.digest != first.digest


def test_manifest_config_and_layer_agree(tmp_path: Path) -> None:
    image = single_binary_image("registry.k8s.io/pause:3.10.1", _binary(tmp_path), "/pause")
    assert (image.repository, image.tag) == ("registry.k8s.io/pause", "3.10.1")
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    config_blob = image.blobs[manifest["config"]["digest"]]
    assert len(config_blob) == manifest["config"]["size"]
    [layer_ref] = manifest["layers"]
    assert layer_ref["mediaType"] == OCI_LAYER
    layer = image.blobs[layer_ref["digest"]]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == layer_ref["digest"]
    raw = gzip.decompress(layer)
    config = json.loads(config_blob)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    assert config["config"]["Entrypoint"] == ["/pause"] and config["os"] == "linux"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        [member] = tar.getmembers()
        assert member.name == "pause" and member.mode == 0o755 and member.mtime == 0
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == _binary(tmp_path).read_bytes()
