"""Fast tier: the program under Pulumi's mocks (the real engine runs it in the lab tier)."""

from __future__ import annotations

import pulumi
import pytest

from stacks.design.loader import load


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def mocks():
    m = Mocks()
    pulumi.runtime.set_mocks(m, preview=False)
    yield m


def test_components_are_registered_with_type_tokens_and_parents(mocks):
    from stacks.components.site import Site
    from stacks.program import build

    partnership = load("ke-staging")

    outputs = {}

    @pulumi.runtime.test
    def run():
        outputs.update(build(partnership))
        return pulumi.Output.from_input(None)

    run()
    assert set(outputs) == {"country", "mode", "totals", "funding", "sites", "fabrics", "clusters", "platform"}
    assert outputs["clusters"] == {}  # no kubeconfig: the design layers only
    from stacks.design.sizing import design

    assert outputs["totals"]["new_gpus"] == design(partnership).gpus
    types = {(r.typ, r.name) for r in mocks.resources}
    for site in partnership.sites:
        assert ("sovereign:site:Site", site.name) in types
        assert ("sovereign:fabric:Fabric", f"{site.name}-fabric") in types
    assert Site.__init__.__annotations__  # typed args, read by people and tools


def test_site_summary_output_carries_the_design(mocks):
    from stacks.components.site import Site, SiteArgs
    from stacks.design.sizing import design

    planned = design(load("ke-staging")).sites[0]

    @pulumi.runtime.test
    def run():
        site = Site(planned.site, SiteArgs(design=planned))

        def check(summary):
            assert summary["capacity"]["new_gpus"] == planned.gpus
            assert summary["power"]["facility_mw"] == planned.facility_mw
            assert summary["ip_plan"]["data"]["first"] == planned.pools["data"].first
            assert "fabric" not in summary

        return site.summary.apply(check)

    run()


def test_fabric_summary_output(mocks):
    from stacks.components.fabric import Fabric, FabricArgs
    from stacks.design.sizing import design

    plan = design(load("ke-staging")).sites[0].fabric

    @pulumi.runtime.test
    def run():
        fabric = Fabric("f", FabricArgs(plan=plan))
        return fabric.summary.apply(
            lambda s: (s["leaves"] == plan.leaves and s["switches"] == plan.switches) or pytest.fail(s)
        )

    run()


def test_cluster_layer_with_a_kubeconfig_creates_provider_namespace_and_plan_of_record(mocks):
    from stacks.program import ClusterTarget, build

    partnership = load("ke-staging")
    site = partnership.sites[0].name

    @pulumi.runtime.test
    def run():
        build(partnership, ClusterTarget(None, pulumi.Output.secret("apiVersion: v1")))
        return pulumi.Output.from_input(None)

    run()
    by_type = {}
    for r in mocks.resources:
        by_type.setdefault(r.typ, []).append(r)
    assert [r.name for r in by_type["sovereign:cluster:Cluster"]] == [f"{site}-cluster"]
    assert by_type["pulumi:providers:kubernetes"][0].inputs["enableServerSideApply"] in (True, "true")
    (namespace,) = by_type["kubernetes:core/v1:Namespace"]
    assert namespace.inputs["metadata"]["name"] == "sovereign-system"
    (configmap,) = by_type["kubernetes:core/v1:ConfigMap"]
    data = configmap.inputs["data"]
    from stacks.components.cluster import plan_digest
    from stacks.design.sizing import design
    from stacks.design.summary import site_summary

    summary = site_summary(design(partnership).sites[0])
    assert data["digest"] == plan_digest(summary)
    import json

    assert json.loads(data["summary.json"])["capacity"]["new_gpus"] == summary["capacity"]["new_gpus"]
    # Nodes are never per-node Pulumi resources: the resource count does not grow with the site.
    assert not any(r.typ == "kubernetes:core/v1:Node" for r in mocks.resources)


def test_an_expand_sites_cluster_comes_from_its_own_kubeconfig_secret(mocks, monkeypatch):
    from pulumi.runtime.config import set_config

    from stacks.program import cluster_target

    monkeypatch.delenv("SOVEREIGN_KUBECONFIG", raising=False)
    partnership = load("de-staging")
    site = partnership.sites[0]
    key = site.existing.cluster.kubeconfig_secret
    assert cluster_target(pulumi.Config("sovereign"), partnership) is None  # no secret yet: design layers only
    set_config(f"sovereign:{key}", "apiVersion: v1")
    target = cluster_target(pulumi.Config("sovereign"), partnership)
    assert target is not None and target.site is None  # the first site, whose secret this is


def test_no_module_of_the_program_folder_shadows_the_standard_library():
    # The engine runs the program and its dynamic providers with stacks/ as the working directory,
    # first on sys.path: a stacks/platform.py once replaced the stdlib `platform` for pulumi itself.
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "stacks"
    names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    assert not names & set(sys.stdlib_module_names)


def provision(servers_per_rack: dict[int, int], **args) -> None:
    """A `Machines` of that many servers per rack, under the mocks."""
    from stacks.components.machines import Machines, MachinesArgs
    from stacks.design.bmc_plan import BmcServer

    servers = [BmcServer(f"n{rack}-{i}", rack, f"10.0.{rack}.{i}", f"10.1.{rack}.{i}", f"https://10.0.{rack}.{i}",
                         "/redfish/v1/Systems/1") for rack, count in servers_per_rack.items() for i in range(count)]

    @pulumi.runtime.test
    def run():
        machines = Machines("s1-machines", MachinesArgs(
            servers=servers, username="provisioning", password=pulumi.Output.secret("s3cret-site"),
            image_url="http://artifacts/os.iso", image_sha256="0" * 64, gpu_model="B200", gpus=8, **{"ca_pem": "", **args}))
        return machines.summary.apply(lambda s: s)

    run()


def test_machines_spread_racks_over_provider_pools(mocks):
    """One dynamic-provider process runs 4 operations at once, so the racks are spread, whole, over
    `pools` provider instances (each its own process) and a site provisions pools x 4 at a time."""
    provision({rack: 3 for rack in range(1, 6)}, pools=2)
    pools = [r for r in mocks.resources if r.typ == "pulumi:providers:pulumi-python"]
    assert sorted(p.name for p in pools) == ["s1-machines-pool0", "s1-machines-pool1"]
    by_rack: dict[int, set[str]] = {}
    for r in mocks.resources:
        if r.typ == "pulumi-python:dynamic:Resource":
            rack = int(r.name[1:].split("-")[0])
            by_rack.setdefault(rack, set()).add(r.provider.split("::")[-2] if r.provider else "")
    assert all(len(p) == 1 for p in by_rack.values()), by_rack  # a rack stays in one process
    assert {next(iter(p)) for p in by_rack.values()} == {"s1-machines-pool0", "s1-machines-pool1"}


def test_the_bmc_connection_is_the_pools_configuration_not_each_servers(mocks):
    """The local backend rewrites the whole state at every step, so what every server would repeat
    (credentials, the CA) is held once per pool; a server's inputs are its own."""
    provision({1: 3}, ca_pem="PEM", deadline_s=90)
    pools = [r for r in mocks.resources if r.typ == "pulumi:providers:pulumi-python"]
    assert len(pools) == 1
    assert {k: pools[0].inputs[k] for k in ("bmc:username", "bmc:ca_pem", "bmc:deadline_s")} == \
        {"bmc:username": "provisioning", "bmc:ca_pem": "PEM", "bmc:deadline_s": 90}
    secret = pools[0].inputs["bmc:password"]  # a secret, so encrypted in state
    rpc = pulumi.runtime.rpc
    assert secret[rpc._special_sig_key] == rpc._special_secret_sig and secret["value"] == "s3cret-site"
    for machine in (r for r in mocks.resources if r.typ == "pulumi-python:dynamic:Resource"):
        assert not {"username", "password", "ca_pem", "deadline_s", "wave"} & set(machine.inputs), machine.inputs


def test_servers_are_registered_in_turn_from_each_pool_and_seeds_have_their_own_provider(mocks):
    """The engine checks registrations one at a time through the resource's provider; a run of one
    pool's servers would queue every other pool behind that pool's busy workers."""
    from stacks.components.machines import round_robin
    from stacks.design.bmc_plan import BmcServer

    servers = [BmcServer(f"n{rack}-{i}", rack, "", "", "", "") for rack in (1, 2, 3) for i in range(3)]
    order = round_robin(servers, lambda s: s.rack % 2)  # racks 1 and 3 in one pool, rack 2 in the other
    assert [s.name for s in order] == ["n2-0", "n1-0", "n2-1", "n1-1", "n2-2", "n1-2", "n3-0", "n3-1", "n3-2"]
    provision({rack: 3 for rack in range(1, 5)}, pools=2, artifacts_dir="/srv/artifacts",
              artifacts_url="http://artifacts", seeds={f"n{rack}-{i}": {"user-data": "#cloud-config\n"}
                                                       for rack in range(1, 5) for i in range(3)})
    seeds = {r.provider.split("::")[-2] for r in mocks.resources if r.name.endswith("-seed")}
    assert seeds == {"s1-machines-seeds"}
