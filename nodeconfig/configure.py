"""configure(): from a stack or partnership file to a finished Ansible run on its nodes.

Targets either the site design's nodes (real hardware: names and addresses from the IP plan) or
a local lab whose nodes stand in for the design's first nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.paths import state_root
from nodeconfig import hostkeys
from nodeconfig.cluster_join import join_session, parse_kubeconfig
from nodeconfig.cluster_pki import Pem
from nodeconfig.inventory import Admin, build_inventory, design_hosts, lab_hosts, shards_for, site_vars
from nodeconfig.runner import EventSink, RunResult, Shard, run_playbook
from nodeconfig.settings import TUNED, Profile, SshAccess
from stacks.design import atomic
from stacks.design.loader import InputError, Problem, load_admins, load_and_design, load_secrets, resolve, stack_name
from stacks.design.node_labels import topology_labels
from stacks.design.partnership import Mode
from stacks.design.project import current_project_or_none
from toolchain import pins

LAB_ADMIN = "sovadmin"


@dataclass(frozen=True)
class ClusterSource:
    """The existing cluster an expand site's new nodes join: where its kubeconfig comes from."""

    where: str  # names the kubeconfig in messages, never its content
    read: Callable[[], str]  # the kubeconfig, read only when a run joins nodes
    lab: str | None = None  # the lab whose cluster it is (its nodes need the lab's preparation)


@dataclass(frozen=True)
class Target:
    """What a run addresses: the inventory, how to reach it, and where its state lives."""

    stack: str
    inventory: dict[str, Any]
    access: SshAccess
    state_dir: Path
    cluster: ClusterSource | None = None  # expand: the cluster the gpu/storage nodes join
    # Extra variables that must not be in the inventory (a greenfield cluster's keys and token).
    secret_vars: dict[str, Any] = field(default_factory=dict)

    @property
    def ssh_config(self) -> Path:
        return self.access.ssh_config


def plan_target(
    ref: str, *, site: str | None = None, lab: str | None = None, accept_new_host_keys: bool = False,
    cluster: bool = False,
) -> Target:
    """The run's inventory and SSH access. `accept_new_host_keys` (real sites): record the keys of
    nodes met for the first time instead of refusing them. `cluster` (greenfield): the run also
    bootstraps the site's Kubernetes cluster on the nodes, signed by the lab's CA or, on a real site,
    by the site CA among the stack's secrets."""
    partnership, planned = load_and_design(ref)
    stack = stack_name(resolve(ref))
    sites = {s.name: (s, d) for s, d in zip(partnership.sites, planned.sites)}
    if site is not None and site not in sites:
        raise InputError([Problem(str(resolve(ref)), None, "--site", f"no site {site!r}; the stack has: {', '.join(sites)}")])
    spec, site_design = sites[site] if site else next(iter(sites.values()))
    if cluster:
        where = str(resolve(ref))
        if partnership.mode is not Mode.GREENFIELD:
            raise InputError([Problem(where, None, "--cluster", "only a greenfield stack bootstraps its cluster; "
                                      f"this one is {partnership.mode.value}")])
    if lab is None:
        admins = _stack_admins(ref)
        hosts = design_hosts(site_design, spec.networks.compute)
        state = _state_root() / "configure" / stack / spec.name
        design_keys = _stack_known_hosts(ref)
        access = SshAccess(
            ssh_config=hostkeys.site_ssh_config(stack, state, design_keys),
            control_path=hostkeys.site_control_path(state),
            known_hosts=(*([design_keys] if design_keys else []), hostkeys.recorded(state)),
            accept_new_host_keys=accept_new_host_keys,
        )
    else:
        lab_spec = _lab(lab)
        key = Path(str(lab_spec.ssh_key) + ".pub").read_text(encoding="utf-8").strip()
        admins = [*_stack_admins(ref), Admin(LAB_ADMIN, (key,))]
        hosts = lab_hosts(site_design, [{"name": n.name, "ip": n.ip} for n in lab_spec.nodes])
        # The lab's ControlPath, so `lab nodes down` and `stop_node` close Ansible's masters too.
        access = SshAccess(
            ssh_config=lab_spec.ssh_config,
            control_path=lab_spec.control_path,
            known_hosts=(lab_spec.known_hosts,),
            lab=True,
        )
        state = _state_root() / "configure" / f"lab-{lab}"
    group_vars = site_vars(partnership, spec, site_design, admins)
    if lab is not None:  # the site's NTP servers and mirrors are out of reach; the lab serves them
        group_vars["time_sync_servers"] = [lab_spec.gateway]
        group_vars["baseline_apt_mirrors"] = lab_apt_mirrors(lab_spec.gateway)
        group_vars["container_runtime_registry_mirrors"] = lab_registry_mirrors(
            lab_spec.gateway, group_vars.get("container_runtime_registry_mirrors") or {})
    inventory = build_inventory(hosts, group_vars)
    existing = spec.existing.cluster if spec.existing is not None else None
    source = None
    if existing is not None:
        source = _lab_cluster(lab) if lab is not None else _stack_cluster(ref, existing.kubeconfig_secret)
    cluster_vars: dict[str, Any] = {}
    if cluster and lab is not None:
        inventory, cluster_vars = lab_greenfield_cluster(lab, inventory, spec.name, state)
    elif cluster:
        inventory, cluster_vars = site_greenfield_cluster(ref, inventory, spec.name, state)
    return Target(stack=stack, inventory=inventory, access=access, state_dir=state, cluster=source,
                  secret_vars=cluster_vars)


def lab_greenfield_cluster(
    lab: str, inventory: dict[str, Any], site: str, state: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A greenfield site on the lab's nodes becomes a cluster: the control plane on the management
    node, the others joining it (nodeconfig/cluster_greenfield.py; the lab's part: lab/kubelet_nodes.py)."""
    from lab import kubelet_nodes
    from lab.errors import LabError
    from nodeconfig.cluster_greenfield import kubelet_hosts, with_cluster
    from toolchain import pins

    try:
        site_ca, lab_vars = kubelet_nodes.prepare(lab, [name for name, *_ in kubelet_hosts(inventory)])
    except LabError as exc:
        raise InputError([Problem(f"lab {lab!r}", None, "--lab", f"the lab's cluster services: {exc}")]) from None
    everything = inventory["all"]
    inventory = {**inventory, "all": {**everything, "vars": {**everything["vars"], **lab_vars}}}
    try:
        return with_cluster(inventory, site, site_ca, state, tools_bin=pins.tools_dir() / "bin", version=pins.KUBERNETES)
    except ValueError as exc:
        raise InputError([Problem(f"lab {lab!r}", None, "--lab", str(exc))]) from None


SITE_CA_CERT, SITE_CA_KEY = "sovereign:site_ca_cert", "sovereign:site_ca_key"


def site_greenfield_cluster(
    ref: str, inventory: dict[str, Any], site: str, state: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A real greenfield site becomes a cluster: as in the lab, but signed by the site CA the stack
    keeps among its secrets, and the nodes pull through the design's own registry mirrors."""
    from nodeconfig.cluster_greenfield import CONTROL_PLANE_BINARIES, with_cluster

    where = str(resolve(ref))
    site_ca = _stack_site_ca(ref)
    tools_bin = pins.tools_dir() / "bin"
    absent = [name for name in (*CONTROL_PLANE_BINARIES, "kubelet") if not (tools_bin / name).is_file()]
    if absent:
        raise InputError([Problem(where, None, "--cluster", f"not built yet: {', '.join(absent)}; "
                                  "run `sovereign tools install` (or `make tools`)")])
    try:
        return with_cluster(inventory, site, site_ca, state, tools_bin=tools_bin, version=pins.KUBERNETES)
    except ValueError as exc:
        raise InputError([Problem(where, None, "--cluster", str(exc))]) from None


def _stack_site_ca(ref: str) -> Pem:
    """The site CA from the stack's config: the certificate (`sovereign:site_ca_cert`) and its key,
    which must be a secret (`sovereign:site_ca_key`); checked before anything is issued from it."""
    from nodeconfig.cluster_pki import ca_problem
    from stacks.automation import EngineError, stack_config

    path = resolve(ref)
    stack = stack_name(path)
    try:
        found = stack_config(stack, (SITE_CA_CERT, SITE_CA_KEY))
    except EngineError as exc:
        raise InputError([Problem(str(path), None, f"config.{SITE_CA_KEY}", f"cannot read the stack's secrets: {exc}")]) from None
    missing = [key for key in (SITE_CA_CERT, SITE_CA_KEY) if key not in found]
    if missing:
        hint = (f"a greenfield cluster is signed by the site CA the stack keeps; set it with "
                f"`pulumi config set -s {stack} {SITE_CA_CERT} < ca.crt` and "
                f"`pulumi config set --secret -s {stack} {SITE_CA_KEY} < ca.key` "
                "(README: Pointing it at real hardware, step 7)")
        raise InputError([Problem(str(path), None, f"config.{key}", hint) for key in missing])
    key, encrypted = found[SITE_CA_KEY]
    if not encrypted:
        raise InputError([Problem(str(path), None, f"config.{SITE_CA_KEY}",
                                  "the CA key is stored in plain text: remove it and set it again with "
                                  f"`pulumi config set --secret -s {stack} {SITE_CA_KEY} < ca.key`")])
    # `pulumi config set KEY < file` keeps the value without its last newline; files of PEMs end with one.
    site_ca = Pem(found[SITE_CA_CERT][0].strip() + "\n", key.strip() + "\n")
    problem = ca_problem(site_ca)
    if problem is not None:
        raise InputError([Problem(str(path), None, f"config.{SITE_CA_CERT}", problem)])
    return site_ca


def configure(
    target: Target,
    *,
    secrets_file: Path | None = None,
    check: bool = False,
    diff: bool = False,
    tags: str | None = None,
    limit: str | None = None,
    profile: Profile = TUNED,
    total_forks: int | None = None,
    on_event: EventSink | None = None,
    reboot: bool = True,
) -> RunResult:
    """reboot: nodes whose new NVIDIA driver needs one are rebooted one at a time per shard (drain
    and uncordon hooks from the inventory); False leaves them running and reports them."""
    secrets = {**(_secret_vars(secrets_file, target.inventory) if secrets_file else {}), **target.secret_vars} or None
    # Check mode changes nothing on the cluster either (no token); tags without kubernetes_node need none.
    if target.cluster is not None and not check and _runs_tag(tags, "kubernetes_node"):
        endpoint = parse_kubeconfig(target.cluster.read(), target.cluster.where)
        kubelet = pins.tools_dir() / "bin" / "kubelet"
        with join_session(endpoint, kubelet=kubelet, pinned=pins.KUBERNETES) as join:
            inventory = _with_join(target, join.role_vars)
            return _run(target, inventory, {**(secrets or {}), "kubernetes_node_bootstrap_token": join.token},
                        check=check, diff=diff, tags=tags, limit=limit, profile=profile, total_forks=total_forks,
                        on_event=on_event, reboot=reboot)
    return _run(target, target.inventory, secrets, check=check, diff=diff, tags=tags, limit=limit, profile=profile,
                total_forks=total_forks, on_event=on_event, reboot=reboot)


def _run(
    target: Target, inventory: dict[str, Any], secrets: dict[str, Any] | None, *, check: bool, diff: bool,
    tags: str | None, limit: str | None, profile: Profile, total_forks: int | None, on_event: EventSink | None,
    reboot: bool,
) -> RunResult:
    run_dir = target.state_dir / "runs" / time.strftime("%Y%m%dT%H%M%S")
    suffix = 0
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{run_dir.name.split('.')[0]}.{suffix}")
    return run_playbook(
        inventory=with_reboot(inventory, reboot),
        shards=shards_for(inventory) if profile.sharded else [Shard("all", "all")],
        run_dir=run_dir,
        state_dir=target.state_dir,
        access=target.access,
        secrets=secrets,
        profile=profile,
        total_forks=total_forks,
        check=check,
        diff=diff,
        tags=tags,
        limit=limit,
        on_event=on_event,
    )


def _runs_tag(tags: str | None, tag: str) -> bool:
    wanted = {t.strip() for t in (tags or "all").split(",")}
    return bool(wanted & {tag, "all"})


# The groups whose nodes join the cluster: an expand site adds GPU and storage nodes.
JOIN_GROUPS = ("gpu", "storage")


def join_hosts(inventory: dict[str, Any]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """host -> (group, SU group, its inventory entry) for every node that joins."""
    children = inventory["all"]["children"]
    found: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    for su, group in children["gpu"]["children"].items():
        for host, entry in group["hosts"].items():
            found[host] = ("gpu", su, entry)
    for host, entry in children["storage"]["hosts"].items():
        found[host] = ("storage", None, entry)
    return found


def _with_join(target: Target, role_vars: dict[str, Any]) -> dict[str, Any]:
    """The inventory with the join's role variables, and each joining node's design labels."""
    import copy

    inventory = copy.deepcopy(target.inventory)
    group_vars = inventory["all"]["vars"]
    group_vars.update(role_vars)
    site = group_vars["sovereign_site"]
    lab_nodes = _prepare_lab(target, group_vars) if target.cluster and target.cluster.lab else {}
    for host, (group, su, entry) in join_hosts(inventory).items():
        entry["kubernetes_node_labels"] = topology_labels(
            site, group, rack=int(entry.get("sovereign_rack") or 0), su=int(su[2:]) if su else None
        )
        if host in lab_nodes:
            # A plain bridge network per node (the lab runs no CNI daemonset); the bridge address.
            entry["kubernetes_node_pod_cidr"] = f"10.244.{lab_nodes[host]}.0/24"
            entry["kubernetes_node_ip"] = entry["ansible_host"]
    return inventory


def _prepare_lab(target: Target, group_vars: dict[str, Any]) -> dict[str, int]:
    """The lab's part of a join (lab/kubelet_nodes.py): its registry seeded, its joining LXC nodes
    able to run a kubelet, containerd set as the lab's nodes need. Returns node -> lab index."""
    from lab import kubelet_nodes

    assert target.cluster is not None and target.cluster.lab is not None
    spec = _lab(target.cluster.lab)
    joining = join_hosts(target.inventory)
    _site_ca, lab_vars = kubelet_nodes.prepare(target.cluster.lab, [n.name for n in spec.nodes if n.name in joining])
    group_vars.update(lab_vars)
    return {node.name: node.index for node in spec.nodes if node.name in joining}


def _lab_cluster(name: str) -> ClusterSource | None:
    """The lab's cluster, when it listens on the lab bridge (kubelets on its nodes reach it there);
    a lab without one joins nothing."""
    from lab.control_plane import ControlPlane
    from lab.nodes import NodeLab

    spec = _lab(name)
    control_plane = ControlPlane(name, NodeLab(name).dir)
    if not control_plane.exists() or control_plane.address != spec.gateway:
        return None
    return ClusterSource(f"lab {name}'s cluster ({control_plane.kubeconfig})",
                         lambda: control_plane.kubeconfig.read_text(encoding="utf-8"), lab=name)


def _stack_cluster(ref: str, secret: str) -> ClusterSource:
    """The existing cluster's kubeconfig: the stack secret `sovereign:<secret>`."""
    path = resolve(ref)
    key = f"sovereign:{secret}"

    def read() -> str:
        from stacks.automation import EngineError, stack_secret

        try:
            value = stack_secret(stack_name(path), key)
        except EngineError as exc:
            raise InputError([Problem(str(path), None, f"config.{key}", f"cannot read the stack secret: {exc}")]) from None
        if value is None:
            hint = (f"the existing cluster's kubeconfig is not set: "
                    f"pulumi config set --secret -s {stack_name(path)} {key} < kubeconfig.yaml")
            raise InputError([Problem(str(path), None, f"config.{key}", hint)])
        return value

    return ClusterSource(f"{path}: config.{key}", read)


def _state_root() -> Path:
    """Runs belong to the project; a file configured outside any project keeps them in the user's state dir."""
    project = current_project_or_none()
    return project.state_dir if project is not None else state_root()


def lab_registry_mirrors(gateway: str, design: dict[str, Any]) -> dict[str, Any]:
    """The design's registry mirrors, with the images Kubernetes needs from the lab's in-country
    registry (lab/image_registry.py): configure and verify of a lab read the same map, whether or
    not the run joins a cluster."""
    from lab.image_registry import mirror_url

    return {**design, "registry.k8s.io": [mirror_url(gateway, "registry.k8s.io")]}


def lab_apt_mirrors(gateway: str, uris: list[str] | None = None) -> dict[str, str]:
    """The lab's apt cache (lab/aptcache.py) in front of the Debian mirror the host uses, under the
    upstream names baseline knows (its vars/Debian.yml)."""
    from lab.aptcache import url
    from lab.mirror import host_uris

    found = uris if uris is not None else host_uris()
    archive = next((u for u in found if "security" not in u), found[0])
    security = next((u for u in found if "security" in u), None)

    def cached(uri: str) -> str:
        return f"{url(gateway)}/{uri.split('://', 1)[1].rstrip('/')}"

    mirrors = {"deb.debian.org/debian": cached(archive)}
    if security:
        mirrors["security.debian.org/debian-security"] = cached(security)
    return mirrors


def with_reboot(inventory: dict[str, Any], reboot: bool) -> dict[str, Any]:
    """The inventory with nvidia_host's reboot switch set for the whole run."""
    everything = inventory["all"]
    return {**inventory, "all": {**everything, "vars": {**everything.get("vars", {}), "nvidia_host_reboot": reboot}}}


def _stack_admins(ref: str) -> list[Admin]:
    """Administrators from the stack config key `sovereign:admins` ([{name, ssh_keys}])."""
    return [Admin(admin.name, tuple(admin.ssh_keys)) for admin in load_admins(ref)]


def _stack_known_hosts(ref: str) -> Path | None:
    """The design's known_hosts: stack config key `sovereign:known_hosts`, relative to the stack."""
    path = resolve(ref)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    config = data.get("config") if isinstance(data, dict) else None
    raw = (config or {}).get("sovereign:known_hosts")
    if raw is None:
        return None
    where = "config.sovereign:known_hosts"
    if not isinstance(raw, str) or not raw.strip():
        raise InputError([Problem(str(path), None, where, "expected the path of a known_hosts file")])
    known = (path.parent / raw).resolve()
    if not known.is_file():
        raise InputError([Problem(str(path), None, where, f"no such file: {known}")])
    return known


def _lab(name: str):
    from lab.nodes import NodeLab

    spec = NodeLab(name).spec()
    if spec is None or not spec.count:
        hint = f"no lab nodes; start them with `sovereign lab nodes up --name {name}`"
        raise InputError([Problem(f"lab {name!r}", None, "--lab", hint)])
    return spec


def _secret_vars(path: Path, inventory: dict[str, Any]) -> dict[str, Any]:
    """Secrets file -> the role variables that carry them (the loader checks the file is 0600)."""
    admins = inventory["all"]["vars"]["baseline_admin_users"]
    secrets = load_secrets(path, admins=[a["name"] for a in admins])
    out: dict[str, Any] = {}
    hashes = secrets.admin_password_hashes
    if hashes:
        out["baseline_admin_users"] = [
            {**a, **({"password_hash": hashes[a["name"]]} if a["name"] in hashes else {})} for a in admins
        ]
    auths = [
        {"registry": registry, "username": cred.username, "password": cred.password}
        for registry, cred in secrets.registry_credentials.items()
    ]
    if auths:
        out["container_runtime_registry_auths"] = auths
    return out


def write_inventory(target: Target) -> Path:
    """The target's inventory as a file (for verify and for people), beside its runs."""
    target.state_dir.mkdir(parents=True, exist_ok=True)
    path = target.state_dir / "inventory.yml"
    atomic.write_file(path, yaml.safe_dump(target.inventory, sort_keys=False))
    return path
