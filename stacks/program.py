"""The stack's layers, built in dependency order from a validated partnership.

Kept apart from __main__.py so tests can run it under Pulumi's mocks with any partnership, and so a
country's own project runs the same program: its `__main__.py` is `from stacks.program import main; main()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pulumi

from stacks.bmc_config import BmcSettings, bmc_settings
from stacks.chart_index import ChartUnavailable
from stacks.components.cluster import Cluster, ClusterArgs
from stacks.components.fabric import Fabric, FabricArgs
from stacks.components.site import Site, SiteArgs
from stacks.design.approval import ApprovalError, check_before_apply, digest, plan_document
from stacks.design.loader import CONFIG_KEY, InputError, Problem, validate_mapping
from stacks.design.partnership import Partnership
from stacks.design.sizing import SizingErrors, design
from stacks.design.summary import plan_summary, site_summary
from stacks.platform_layer import ChartSettings, build_platform
from stacks.registration_trace import keep_project_frames

OUTPUTS = ("country", "mode", "totals", "funding", "sites", "fabrics", "clusters", "platform")
ALLOW_UNAPPROVED_ENV = "SOVEREIGN_ALLOW_UNAPPROVED"


@dataclass(frozen=True)
class ClusterTarget:
    """Which site's Kubernetes API the stack applies to, and the kubeconfig that reaches it."""

    site: str | None  # None: the partnership's first site
    kubeconfig: pulumi.Input[str]
    charts: ChartSettings | None = None  # None: the cluster layer only, no platform charts


def build(partnership: Partnership, cluster: ClusterTarget | None = None) -> dict[str, object]:
    """The design, cluster and platform layers; the site's servers are in stacks of their own
    (`build_unit_machines`)."""
    planned = design(partnership)
    summary = plan_summary(partnership, planned)
    sites, fabrics, clusters, platforms = {}, {}, {}, {}
    cluster_site = (cluster.site or planned.sites[0].site) if cluster else None
    for site_design in planned.sites:
        site = Site(site_design.site, SiteArgs(design=site_design))
        fabric = Fabric(
            f"{site_design.site}-fabric",
            FabricArgs(plan=site_design.fabric),
            pulumi.ResourceOptions(parent=site),
        )
        sites[site_design.site] = site.summary
        fabrics[site_design.site] = fabric.summary
        if cluster is not None and site_design.site == cluster_site:
            built = Cluster(
                f"{site_design.site}-cluster",
                ClusterArgs(site=site_design.site, kubeconfig=cluster.kubeconfig, summary=site_summary(site_design)),
                pulumi.ResourceOptions(parent=site),
            )
            clusters[site_design.site] = built.summary
            if cluster.charts is not None:
                site_input = next(s for s in partnership.sites if s.name == site_design.site)
                platforms[site_design.site] = build_platform(
                    site_design.site, partnership, site_input, site_design, built.provider, cluster.charts, built)
    if cluster is not None and cluster_site not in clusters:
        raise InputError([Problem("stack config", None, "sovereign:clusterSite",
                                  f"no site {cluster_site!r} in the partnership")])

    # Output names are an interface (docs/outputs.md): the report and other stacks read them.
    outputs = {
        "country": partnership.country,
        "mode": partnership.mode.value,
        "totals": summary["totals"],
        "funding": summary["funding"],
        "sites": sites,
        "fabrics": fabrics,
        "clusters": clusters,
        "platform": platforms,
    }
    for key in OUTPUTS:
        pulumi.export(key, outputs[key])
    return outputs


def build_unit_machines(partnership: Partnership, config: pulumi.Config, bmc: BmcSettings | None) -> None:
    """One scalable unit's servers: the program as a machine stack runs it (stacks.machine_stacks
    sets `sovereign:su` and the unit's share of the provider pools)."""
    from stacks.machines_layer import build_machines, machines_site

    if bmc is None:
        raise InputError([Problem("stack config", None, "sovereign:bmc",
                                  "a machine stack needs the BMC settings (sovereign:bmc, or a lab's BMCs)")])
    site = machines_site(design(partnership), config.get("clusterSite") or os.environ.get("SOVEREIGN_CLUSTER_SITE"))
    pools = config.get_int("unitPools") or bmc.pools
    pulumi.export("machines", build_machines(partnership, site, replace(bmc, pools=pools), config.require_int("su")))


def cluster_target(config: pulumi.Config, partnership: Partnership) -> ClusterTarget | None:
    """The site's cluster: its kubeconfig as a stack secret — `sovereign:<existing.cluster.
    kubeconfig_secret>` on an expand site, `sovereign:kubeconfig` otherwise — else the lab's
    kubeconfig named by SOVEREIGN_KUBECONFIG (set by `sovereign up --lab` and `sovereign tools env
    --lab`), else none: the stack then builds the design layers only."""
    site = config.get("clusterSite") or os.environ.get("SOVEREIGN_CLUSTER_SITE") or None
    chosen = next((s for s in partnership.sites if s.name == site), partnership.sites[0])
    existing = chosen.existing.cluster if chosen.existing is not None else None
    charts = ChartSettings.from_environment(config) if config.get_bool("platform") is not False else None
    secret = config.get_secret(existing.kubeconfig_secret if existing is not None else "kubeconfig")
    if secret is not None:
        return ClusterTarget(site, secret, charts)
    path = os.environ.get("SOVEREIGN_KUBECONFIG")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InputError([Problem(path, None, "SOVEREIGN_KUBECONFIG", f"cannot read the kubeconfig: {exc}")]) from None
        return ClusterTarget(site, pulumi.Output.secret(text), charts)
    return None


def approval_gate(stack: str, partnership: Partnership, config: pulumi.Config) -> dict[str, object]:
    """The signed-approval rule, enforced in the program so `pulumi up` by hand obeys it too.

    A preview of an unapproved plan is allowed (reviewers need it before they sign) and warns;
    an update refuses, unless a lab or staging stack runs with `--allow-unapproved`, which the
    `approval` output records.
    """
    allow = bool(config.get_bool("allowUnapproved")) or os.environ.get(ALLOW_UNAPPROVED_ENV) == "1"
    planned = design(partnership)
    try:
        return check_before_apply(stack, partnership, planned, allow_unapproved=allow)
    except ApprovalError as exc:
        if not pulumi.runtime.is_dry_run():
            raise
        pulumi.log.warn(f"`up` would refuse this plan:\n{exc}")
        value = digest(plan_document(stack, partnership, planned))
        return {"digest": value, "approved": False, "approvals": [], "allow_unapproved": allow}


def main() -> None:
    """The program the engine runs: read the stack's partnership, check its approval, build every layer."""
    stack = pulumi.get_stack()
    config = pulumi.Config("sovereign")
    # before the first registration: the state's bytes per resource (a unit stack's engine runs
    # from the units' workspace, and names the project's files from there)
    keep_project_frames(engine_root=Path(pulumi.get_root_directory()) if config.get("machinesOf") else None)
    try:
        partnership = validate_mapping(
            config.require_object("partnership"),
            f"Pulumi.{stack}.yaml ({CONFIG_KEY})",
        )
        # A machine stack (stacks.machine_stacks) answers to its site stack's approval.
        parent = config.get("machinesOf")
        approval = approval_gate(parent or stack, partnership, config)
        if parent:
            build_unit_machines(partnership, config, bmc_settings(config))
        else:
            build(partnership, cluster_target(config, partnership))
        pulumi.export("approval", approval)
    except (InputError, SizingErrors, ApprovalError, ChartUnavailable) as exc:
        # The engine prints this message as is; a traceback would bury it.
        raise pulumi.RunError(str(exc)) from None
