"""Fast tier: per-node install seeds rendered from the design and packed as a NoCloud ISO."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from nodeconfig.nodes import iter_nodes
from stacks.design.loader import load_and_design
from stacks.design.seed import render_files, render_seed, seed_context, seed_node, templates_digest
from stacks.providers.seed_iso import SeedIsoProvider, files_digest, pack_seed

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8sLd0vbbK3vMgkbQfWq2Gk8D0zHc3v7c8j7yJmNW2k admin@ke"


@pytest.fixture(scope="module")
def seed():
    partnership, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    node = next(iter_nodes(site))
    return node, render_seed(partnership, seed_node(site, node.name, node.data_ip), [KEY], "http://artifacts/callback")


def test_autoinstall_user_data_carries_the_nodes_plan(seed):
    node, files = seed
    doc = yaml.safe_load(files["user-data"])["autoinstall"]
    assert doc["identity"]["hostname"] == node.name
    assert doc["ssh"]["authorized-keys"] == [KEY] and doc["ssh"]["allow-pw"] is False
    assert doc["network"]["ethernets"]["data0"]["addresses"] == [f"{node.data_ip}/16"]
    assert doc["storage"]["layout"]["name"] == "lvm"
    assert "http://artifacts/callback" in doc["late-commands"][0]
    assert yaml.safe_load(files["meta-data"])["local-hostname"] == node.name


def test_preseed_uses_the_countrys_mirror(seed):
    node, files = seed
    preseed = files["preseed.cfg"]
    assert "d-i mirror/http/hostname string packages.ai.go.ke" in preseed  # ke-staging's package mirror
    assert "d-i mirror/http/directory string /debian" in preseed
    assert f"d-i netcfg/get_ipaddress string {node.data_ip}" in preseed
    assert KEY in preseed


def test_seed_changes_with_its_inputs():
    partnership, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    node = next(iter_nodes(site))
    one = render_seed(partnership, seed_node(site, node.name, node.data_ip), [KEY], "http://a/cb")
    assert one == render_seed(partnership, seed_node(site, node.name, node.data_ip), [KEY], "http://a/cb")
    other = render_seed(partnership, seed_node(site, node.name, node.data_ip), [KEY + "2"], "http://a/cb")
    assert one["meta-data"] != other["meta-data"]  # the seed id names the inputs


def test_packed_as_a_nocloud_iso(seed, tmp_path):
    _, files = seed
    iso = tmp_path / "node-seed.iso"
    digest = pack_seed(files, iso)
    assert len(digest) == 64
    info = subprocess.run(["xorriso", "-indev", str(iso), "-pvd_info", "-ls", "/"], capture_output=True, text=True,
                          check=True)
    assert "Volume Id    : cidata" in info.stdout + info.stderr
    assert {"'user-data'", "'meta-data'", "'preseed.cfg'"} <= set(info.stdout.split())


def test_a_seed_resource_holds_its_context_and_renders_it(tmp_path):
    """The inputs are the seed's context (what preview shows, value by value), the provider renders
    it; neither the inputs nor the outputs hold the text. A state from before contexts, whose
    outputs hold the text, is no change when the rendering is the same."""
    partnership, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    node = next(iter_nodes(site))
    context = seed_context(partnership, seed_node(site, node.name, node.data_ip), [KEY], "http://a/cb")
    provider = SeedIsoProvider()
    props = {"name": "n1", "seed": context, "templates_sha256": templates_digest(), "artifacts_dir": str(tmp_path),
             "artifacts_url": "http://artifacts"}
    outs = provider.create(props).outs
    assert outs["files_sha256"] == files_digest(render_files(context))
    assert "user-data" not in json.dumps(outs) and (tmp_path / "seeds" / "n1-seed.iso").is_file()
    assert not provider.diff("n1", outs, props).changes
    rotated = {**context, "admin_keys": [KEY + "2"]}
    assert provider.diff("n1", outs, {**props, "seed": rotated}).changes
    # the engine hands maps back with their keys sorted: the same seed, the same id
    assert render_files(json.loads(json.dumps(context, sort_keys=True))) == render_files(context)
    legacy = {k: v for k, v in outs.items() if k != "files_sha256"} | {"files": render_files(context)}
    assert not provider.diff("n1", legacy, props).changes
