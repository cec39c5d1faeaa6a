"""Drive the real Pulumi engine on this project's program (not an inline copy) through the
Automation API: `sovereign up|preview|destroy|refresh`.

The engine runs with the pinned tools (toolchain/), offline settings and a file backend under the
state directory. What `pulumi up -s <stack>` does after `eval "$(sovereign tools env)"` is the
same run: same binaries, same backend, same program.

Interrupted runs: the file backend keeps a lock file per update, and a SIGKILLed engine leaves it
behind together with "pending operations" in the checkpoint. Before each run the lock's owner is
checked: a live owner means another run is going on (fail fast, state untouched); a dead owner
on this host means a crashed run, whose lock is removed and whose pending creates are cleared by
a refresh, so the next `up` reconciles with what actually exists in the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from lab import paths as lab_paths
from lab.chart_mirror import ChartMirror
from lab.control_plane import ControlPlane
from stacks import machine_stacks
from stacks.bmc_config import PASSWORD_FILE_ENV
from stacks.design.loader import load
from stacks.design.preview import ResourceChange, change_from_step
from stacks.design.project import current_project
from stacks.platform_layer import MIRROR_CA_ENV, MIRROR_ENV
from stacks.policy_config import PACK_DIR, write_policy_config
from toolchain import env as tool_env
from toolchain import pins
from toolchain.build import ToolchainError

OPERATIONS = ("up", "preview", "destroy", "refresh")  # and, for a unit stack the design dropped, "preview-destroy"
_PROJECT = "sovereign"
# Resource operations in flight at once: enough for every BMC provider pool (stacks.components.
# machines) and the platform layer's objects; BMCs and the API server set the real limits.
PARALLEL = 64


class EngineError(Exception):
    """The engine run failed; the message is for people (the engine's own words, no traceback)."""


class StackBusy(EngineError):
    """Another run holds the stack's lock."""


class PolicyViolation(EngineError):
    """The mandatory policy pack refused the plan; the message lists each rule and resource."""


@dataclass
class RunResult:
    operation: str
    stack: str
    changes: dict[str, int]
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    recovered: list[str] = field(default_factory=list)  # what was cleaned up from a crashed run
    node_labels: dict[str, Any] | None = None  # after `up --lab`: design labels checked on the nodes

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "operation": self.operation, "stack": self.stack, "changes": self.changes,
                "outputs": self.outputs, "seconds": round(self.seconds, 1), "recovered": self.recovered,
                "node_labels": self.node_labels}


FORCE_ENV = "PULUMI_K8S_ENABLE_PATCH_FORCE"


def backend_dir() -> Path:
    """The project's file backend, `<project>/.sovereign/pulumi`; `$SOVEREIGN_STATE` moves all
    state (lab, runs, this backend) elsewhere, as the tests do to stay apart from a developer's."""
    explicit = os.environ.get("SOVEREIGN_STATE")
    return Path(explicit) / "pulumi" if explicit else current_project().state_dir / "pulumi"


def is_lab_stack(stack: str) -> bool:
    """Stacks whose secrets are lab credentials: the lab passphrase may protect them."""
    return stack.endswith(("-staging", "-lab", "-dev"))


def engine_environment(stack: str, lab: str | None) -> dict[str, str]:
    env = tool_env.engine_env(backend_dir(), lab=is_lab_stack(stack))
    if not is_lab_stack(stack) and "PULUMI_CONFIG_PASSPHRASE" not in os.environ \
            and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        raise EngineError(
            f"stack {stack!r} is not a lab or staging stack: set PULUMI_CONFIG_PASSPHRASE (or _FILE) "
            "for its secrets; the lab passphrase protects only *-staging, *-lab and *-dev stacks"
        )
    if lab is not None:
        lab_dir = lab_paths.lab_dir(lab_paths.lab_name(lab))
        cp = ControlPlane(lab, lab_dir)
        bmc_file = lab_dir / "bmc" / "stack.json"  # written by lab.bmc.site_bmcs_up
        if bmc_file.is_file():
            env["SOVEREIGN_BMC_FILE"] = str(bmc_file)
        elif not cp.exists():
            raise EngineError(f"lab {lab!r} has no Kubernetes; start it with `sovereign lab up --name {lab}`")
        if cp.exists():
            env["SOVEREIGN_KUBECONFIG"] = str(cp.kubeconfig)
            # A lab is disposable: one taken down without `destroy` took its objects with it. Its
            # unreachable API server then drops them from the state instead of failing every run.
            # Never for a real site, whose unreachable cluster must not be forgotten.
            env["PULUMI_K8S_DELETE_UNREACHABLE"] = "true"
            mirror = ChartMirror(cp.dir.parent, lab)
            if mirror.exists():
                env[MIRROR_ENV], env[MIRROR_CA_ENV] = mirror.url, str(mirror.ca)
            site_file = cp.dir / "site.json"
            if site_file.is_file():
                env["SOVEREIGN_CLUSTER_SITE"] = json.loads(site_file.read_text())["site"]
    return env


def _stack(stack: str, env: dict[str, str], work_dir: Path | None = None) -> auto.Stack:
    try:
        tool_env.require_tools()
    except ToolchainError as exc:
        raise EngineError(str(exc)) from None
    command = auto.PulumiCommand(root=str(pins.tools_dir()), skip_version_check=True)
    root = current_project().root
    _link_program_venv(root)
    where = str(work_dir or root)  # a unit stack's: its own workspace (stacks.machine_stacks)
    opts = auto.LocalWorkspaceOptions(
        work_dir=where, pulumi_home=str(tool_env.pulumi_home()), env_vars=env, pulumi_command=command,
        secrets_provider="passphrase",
    )
    try:
        return auto.create_or_select_stack(stack, work_dir=where, opts=opts)
    except auto.CommandError as exc:
        raise EngineError(_engine_message(exc)) from None


def stack_secret(stack: str, key: str) -> str | None:
    """One config value of the stack, decrypted (a secret such as an existing cluster's
    kubeconfig), or None when the stack does not set it. The value is for the caller only."""
    found = stack_config(stack, (key,)).get(key)
    return None if found is None else found[0]


def stack_config(stack: str, keys: tuple[str, ...]) -> dict[str, tuple[str, bool]]:
    """The stack's values of `keys` that it sets, decrypted, each with whether the stack keeps it
    encrypted (`pulumi config set --secret`), read in one engine call. For the caller only."""
    handle = _stack(stack, engine_environment(stack, None))
    try:
        config = handle.get_all_config()
    except auto.CommandError as exc:
        raise EngineError(_engine_message(exc)) from None
    return {key: (str(config[key].value), bool(config[key].secret)) for key in keys if key in config}


def _link_program_venv(root: Path) -> None:
    """The dynamic-provider plugin (stacks.providers) resolves Pulumi.yaml's `virtualenv: .venv`
    against the program directory (`main: stacks/`), not the project root as the language host
    does; a link there to the project's virtualenv makes both find the same interpreter."""
    venv, link = root / ".venv", root / "stacks" / ".venv"
    if venv.is_dir() and not link.exists() and not link.is_symlink():
        try:
            link.symlink_to(Path("..") / ".venv")
        except OSError:
            pass  # a read-only checkout: the run then reports the plugin's own error


def _locks(stack: str) -> list[Path]:
    root = backend_dir() / ".pulumi" / "locks"
    return sorted(root.glob(f"**/{stack}/*.json")) if root.is_dir() else []


def _clear_stale_locks(stack: str) -> list[str]:
    """Remove locks whose owner died on this host; refuse while a live owner holds one."""
    removed = []
    for lock in _locks(stack):
        try:
            info = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        pid, host = int(info.get("pid", 0)), info.get("hostname", "")
        alive = host != socket.gethostname() or _running(pid)
        if alive:
            since = info.get("timestamp", "an unknown time")
            raise StackBusy(
                f"stack {stack!r} is being updated by another run (pid {pid} on {host}, since {since}); "
                "wait for it to finish — its state is left untouched"
            )
        lock.unlink()
        removed.append(f"lock of a crashed run (pid {pid})")
    return removed


def _repair_checkpoint(stack: str) -> list[str]:
    """Undo what a run killed while it saved the stack's state can leave in the file backend, which
    fails every later run with "failed to load checkpoint": a truncated attributes sidecar (the blob
    store writes `<stack>.json.attrs` after renaming the data in, not atomically; without the file it
    reads no attributes), or a checkpoint that is no JSON any more (the engine's own copy of the
    previous one, `<stack>.json.bak`, takes its place). Only called once no live run holds the stack."""
    root = backend_dir() / ".pulumi" / "stacks"
    repaired: list[str] = []
    for checkpoint in sorted(root.glob(f"*/{stack}.json")) if root.is_dir() else []:
        for attrs in (checkpoint.with_name(checkpoint.name + ".attrs"), checkpoint.with_name(checkpoint.name + ".bak.attrs")):
            if attrs.is_file() and not _parses(attrs):
                attrs.unlink()
                repaired.append(f"truncated {attrs.name} of a crashed run (removed)")
        backup = checkpoint.with_name(checkpoint.name + ".bak")
        if not _parses(checkpoint) and backup.is_file() and _parses(backup):
            checkpoint.with_name(checkpoint.name + ".attrs").unlink(missing_ok=True)
            os.replace(backup, checkpoint)
            repaired.append(f"unreadable {checkpoint.name} of a crashed run (the previous checkpoint restored)")
    return repaired


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _running(pid: int) -> bool:
    """A live process (a zombie is a run that has already died)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid > 0 and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pending_operations(stack: auto.Stack) -> int:
    try:
        deployment = stack.export_stack().deployment or {}
    except auto.CommandError:
        return 0
    return len(deployment.get("pending_operations") or [])


def run(
    operation: str,
    stack_name: str,
    *,
    lab: str | None = None,
    expect_no_changes: bool = False,
    allow_unapproved: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    on_engine_event: Callable[[auto.events.EngineEvent], None] | None = None,
    diff: bool = False,
) -> RunResult:
    """One operation on the stack and, where it reaches BMCs, on its scalable units' machine stacks
    (stacks.machine_stacks): `destroy` removes the units first, every other operation runs them after
    the site's stack has succeeded. The changes are summed; a failed unit fails the run, once every
    unit has finished, with each one's reasons."""
    if operation not in OPERATIONS:
        raise ValueError(operation)
    env = engine_environment(stack_name, lab)
    if allow_unapproved:
        env["SOVEREIGN_ALLOW_UNAPPROVED"] = "1"  # read by stacks.program.approval_gate
    recovered = _clear_stale_locks(stack_name)
    recovered += _repair_checkpoint(stack_name)
    stack = _stack(stack_name, env)
    started = time.monotonic()
    units = _UnitRuns.plan(operation, stack_name, stack, env)
    options: dict[str, Any] = {"expect_no_changes": expect_no_changes, "on_event": on_event, "on_engine_event": on_engine_event,
               "diff": diff}
    unit_result = units.run(**options) if units is not None and operation == "destroy" else None
    gated: dict[str, Any] = {}
    if operation in ("up", "preview"):
        # The sovereignty policy pack: mandatory, so a violation fails the run before any change.
        config = write_policy_config(load(stack_name), env.get(MIRROR_ENV), backend_dir().parent / "policy" / stack_name)
        gated = {"policy_packs": [str(PACK_DIR)], "policy_pack_configs": [str(config)]}
    changes, outputs = _run_one(operation, stack, recovered, gated=gated, **options)
    if units is not None and operation != "destroy":
        unit_result = units.run(**options)
    if unit_result is not None:
        for op, count in unit_result.changes.items():
            changes[op] = changes.get(op, 0) + count
        recovered += unit_result.recovered
        if unit_result.machines is not None:
            outputs["machines"] = unit_result.machines
        if unit_result.errors:
            raise EngineError("\n".join(unit_result.errors))
    result = RunResult(operation, stack_name, changes, outputs, time.monotonic() - started, recovered)
    if operation == "up" and lab is not None and ControlPlane(lab, lab_paths.lab_dir(lab_paths.lab_name(lab))).exists():
        result.node_labels = _check_node_labels(stack_name, lab)
    return result


def _run_one(
    operation: str,
    stack: auto.Stack,
    recovered: list[str],
    *,
    gated: dict[str, Any],
    expect_no_changes: bool,
    on_event: Callable[[dict[str, Any]], None] | None,
    on_engine_event: Callable[[auto.events.EngineEvent], None] | None,
    diff: bool,
) -> tuple[dict[str, int], dict[str, Any]]:
    """One engine run of one stack: its change counts and plain outputs, or EngineError."""
    errors: list[str] = []  # the engine's own error diagnostics: the reason a run failed
    violations: list[str] = []  # mandatory policy violations: the reason a gated run failed

    def events(event: auto.events.EngineEvent) -> None:
        data = _event_dict(event)
        policy = event.policy_event
        if policy is not None and policy.enforcement_level == "mandatory":
            urn = policy.resource_urn or ""
            where = "the stack" if not urn or "::pulumi:pulumi:Stack::" in urn else urn.rsplit("::", 1)[-1]
            # The message repeats the policy's description on its first line; the reason follows.
            reason = policy.message.strip().split("\n", 1)[-1].strip()
            violations.append(f"policy {policy.policy_name} ({where}): {reason}")
        if data["kind"] == "diagnostic" and data.get("severity") == "error":
            message = _without_traceback(str(data.get("message", "")).strip())
            if message and "program exited with non-zero exit code" not in message:
                errors.append(message)
        if on_event is not None:
            on_event(data)
        if on_engine_event is not None:
            on_engine_event(event)

    # `parallel` also sizes the program's thread pool (the Python language host gives it 4 threads
    # per unit; unset, Python's default of cpu+4): every resource registration holds one until the
    # resource is done, so without it a site's servers provision a handful at a time.
    common: dict[str, Any] = {"on_event": events, "color": "never", "parallel": PARALLEL}
    outputs: dict[str, Any] = {}
    try:
        if operation in ("up", "preview", "refresh") and _pending_operations(stack):
            # A crashed `up` left operations whose outcome the engine never saw; a refresh reads
            # the cluster, drops the creates that did not happen, and keeps what exists.
            stack.refresh(clear_pending_creates=True, color="never", show_secrets=False, parallel=PARALLEL)
            recovered.append("pending operations of a crashed run (refreshed)")
        if recovered and operation == "up":
            # Objects the crashed run created but never recorded carry its field managers; with
            # server-side apply this run would conflict with itself. Force only in this recovery run.
            stack.workspace.env_vars = {**stack.workspace.env_vars, FORCE_ENV: "true"}
        if operation == "up":
            # continue-on-error: one server whose BMC fails must not stop the others (stacks.components.machines)
            up = stack.up(expect_no_changes=expect_no_changes or None, show_secrets=False, continue_on_error=True,
                          **gated, **common)
            changes = _counts(up.summary.resource_changes)
            outputs = {k: v.value for k, v in up.outputs.items() if not v.secret}
        elif operation == "preview":
            # diff: the engine then sends each step's detailed property diff (names used, values not)
            preview = stack.preview(expect_no_changes=expect_no_changes or None, diff=diff or None, **gated, **common)
            changes = _counts(preview.change_summary)
        elif operation == "preview-destroy":  # a unit stack the design no longer has
            changes = _counts(stack.preview_destroy(**common).change_summary)
        elif operation == "refresh":
            refresh = stack.refresh(expect_no_changes=expect_no_changes or None, show_secrets=False, **common)
            changes = _counts(refresh.summary.resource_changes)
        else:
            destroy = stack.destroy(show_secrets=False, **common)
            changes = _counts(destroy.summary.resource_changes)
    except auto.CommandError as exc:
        if violations:
            raise PolicyViolation("the sovereignty policy pack refused the plan:\n" + "\n".join(violations)) from None
        raise EngineError("\n".join(_reasons(errors)) if errors else _engine_message(exc)) from None
    return changes, outputs


@dataclass
class _UnitResult:
    changes: dict[str, int] = field(default_factory=dict)
    machines: dict[str, Any] | None = None  # the site's servers, summed over the units
    recovered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _UnitRuns:
    """The runs of a site stack's machine stacks for one operation (stacks.machine_stacks)."""

    stack: str
    jobs: list[tuple[str, str]]  # (unit stack, operation)
    remove: list[str]  # unit stacks to delete once destroyed
    config: dict[str, dict[str, tuple[str, bool]]]  # each unit stack's config
    env: dict[str, str]
    folder: Path
    at_once: int
    password: str | None  # the site stack's BMC password, for a 0600 file during the runs

    @classmethod
    def plan(cls, operation: str, stack_name: str, site: auto.Stack, env: dict[str, str]) -> _UnitRuns | None:
        backend = backend_dir()
        existing = machine_stacks.existing_units(stack_name, backend)
        try:
            config = {k: (str(v.value), bool(v.secret)) for k, v in site.get_all_config().items()}
        except auto.CommandError as exc:
            raise EngineError(_engine_message(exc)) from None
        split = machine_stacks.split(stack_name, config, env) if operation != "destroy" else None
        if split is None and not existing:
            return None
        if split is not None and machine_stacks.holds_servers(stack_name, backend):
            raise EngineError(
                f"stack {stack_name!r} holds its servers in its own state, from before each scalable unit had a "
                "stack of its own; refused, since this run would power them off and the units' stacks would "
                f"reinstall them. A lab: `sovereign destroy {stack_name}`, then `up`. A real site: move each unit's "
                f"servers with `pulumi state move` into `{machine_stacks.unit_name(stack_name, 1)}` and so on"
            )
        wanted = split.units if split is not None else {}
        stale = [name for su, name in existing.items() if su not in wanted]
        if operation == "destroy":
            jobs, remove = [(name, "destroy") for name in existing.values()], list(existing.values())
        elif operation == "refresh":
            jobs, remove = [(name, "refresh") for name in existing.values()], []
        elif operation == "up":
            jobs, remove = [(name, "up") for name in wanted.values()] + [(name, "destroy") for name in stale], stale
        else:
            jobs, remove = [(name, "preview") for name in wanted.values()] + [(n, "preview-destroy") for n in stale], []
        plain = {k: v for k, v in config.items() if not v[1]}  # secrets stay in the site stack's config
        password = config.get("sovereign:bmcPassword", (None, True))[0]
        folder = machine_stacks.workspace(current_project(), backend)
        at_once = split.at_once if split is not None else 2
        pools = split.pools if split is not None else 1
        unit_configs = {name: machine_stacks.unit_config(plain, stack_name, su, pools) for su, name in wanted.items()}
        return cls(stack_name, jobs, remove, unit_configs, env, folder, at_once, password) if jobs else None

    def run(self, **options: Any) -> _UnitResult:
        result = _UnitResult()
        env = dict(self.env)
        with contextlib.ExitStack() as cleanup:
            if self.password is not None:
                secret = cleanup.enter_context(tempfile.NamedTemporaryFile(
                    "w", prefix="sovereign-bmc-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
                secret.write(self.password)
                secret.flush()
                env[PASSWORD_FILE_ENV] = secret.name
            with ThreadPoolExecutor(self.at_once) as pool:
                futures = [pool.submit(self._one, name, op, env, options) for name, op in self.jobs]
                for (name, op), future in zip(self.jobs, futures):
                    try:
                        changes, outputs, recovered = future.result()
                    except EngineError as exc:
                        result.errors.append(f"{name}: {exc}")
                        continue
                    for key, count in changes.items():
                        result.changes[key] = result.changes.get(key, 0) + count
                    result.recovered += [f"{name}: {note}" for note in recovered]
                    if op == "up" and isinstance(outputs.get("machines"), dict):
                        result.machines = machine_stacks.add_summaries(result.machines, outputs["machines"])
        return result

    def _one(self, name: str, op: str, env: dict[str, str], options: dict[str, Any]) -> tuple[dict, dict, list]:
        recovered = _clear_stale_locks(name) + _repair_checkpoint(name)
        handle = _stack(name, env, work_dir=self.folder)
        wanted = self.config.get(name)
        if wanted is not None:
            _set_config(handle, wanted)
        unit_options = dict(options)
        if op != "preview":
            unit_options["expect_no_changes"] = op == "refresh" and options["expect_no_changes"]
        changes, outputs = _run_one(op, handle, recovered, gated={}, **unit_options)
        if name in self.remove:
            try:
                handle.workspace.remove_stack(name)
            except auto.CommandError as exc:
                raise EngineError(_engine_message(exc)) from None
        return changes, outputs, recovered


def _set_config(handle: auto.Stack, wanted: dict[str, tuple[str, bool]]) -> None:
    """Make a unit stack's config exactly `wanted` (plain values), touching it only where it differs."""
    try:
        current = {k: (str(v.value), bool(v.secret)) for k, v in handle.get_all_config().items()}
        if current == wanted:
            return
        gone = [key for key in current if key not in wanted]
        if gone:
            handle.remove_all_config(gone)
        handle.set_all_config({k: auto.ConfigValue(value, secret=False) for k, (value, _) in wanted.items()})
    except auto.CommandError as exc:
        raise EngineError(_engine_message(exc)) from None


def preview_changes(stack_name: str, *, lab: str | None = None) -> list[ResourceChange]:
    """The resource changes the engine's preview finds, for the report. Only each step's URN,
    operation and changed property names are kept: values (secrets among them) never leave here."""
    changes: dict[str, ResourceChange] = {}

    def capture(event: auto.events.EngineEvent) -> None:
        # The pre-event announces each step; the outputs event of a preview step may carry the
        # diff the pre-event lacked, so the later, fuller account of a URN wins.
        step = event.resource_pre_event or event.res_outputs_event
        if step is None:
            return
        meta = step.metadata
        change = change_from_step(
            meta.urn, str(getattr(meta.op, "value", meta.op)), meta.diffs, list(meta.detailed_diff or {}),
            meta.old.inputs if meta.old is not None else None, meta.new.inputs if meta.new is not None else None,
        )
        if change is not None and (change.properties or meta.urn not in changes):
            changes[meta.urn] = change

    # An unapproved plan may be previewed (the program only warns): reviewers see it before they sign.
    run("preview", stack_name, lab=lab, on_engine_event=capture, diff=True)
    return list(changes.values())


def _reasons(errors: list[str]) -> list[str]:
    """The engine's error diagnostics without the program's Python traceback: when a resource
    fails, the engine shuts its monitor down and the program dies with a traceback that says
    nothing about why; the resource's own diagnostic does. A traceback alone keeps its last line."""
    plain = [e for e in errors if "Traceback (most recent call last)" not in e]
    if plain:
        return plain
    return [e.strip().splitlines()[-1] for e in errors]


def _check_node_labels(stack_name: str, lab: str) -> dict[str, Any]:
    """Nodes are not Pulumi resources (a site has thousands); their design labels are checked
    against the API server after each `up` instead, and any drift is reported."""
    from lab.sim_nodes import label_drift
    from stacks.design.loader import load_and_design

    _, planned = load_and_design(stack_name)
    site = os.environ.get("SOVEREIGN_CLUSTER_SITE")
    cp = ControlPlane(lab, lab_paths.lab_dir(lab_paths.lab_name(lab)))
    site_file = cp.dir / "site.json"
    if site_file.is_file():
        site = json.loads(site_file.read_text())["site"]
    design = next((s for s in planned.sites if s.site == site), planned.sites[0])
    checked, drift = label_drift(cp.api(), design)
    return {"site": design.site, "checked": checked, "drift": drift}


def _without_traceback(message: str) -> str:
    """A dynamic provider's error arrives as a Python traceback (pulumi.dynamic formats every
    exception so); its last line, less the exception's module path, is the reason people need."""
    if "Traceback (most recent call last):" not in message:
        return message
    head = message.split("Traceback (most recent call last):", 1)[0].strip()
    lines = [ln for ln in message.splitlines() if ln.strip()]
    last = re.sub(r"^[\w.]+(Error|Exception|Mismatch): ", "", lines[-1].strip()) if lines else ""
    return f"{head} {last}".strip()


def _counts(changes: Any) -> dict[str, int]:
    """Change counts keyed by plain operation names ("create", "same", ...)."""
    return {str(getattr(op, "value", op)): int(n) for op, n in (changes or {}).items()}


def _event_dict(event: auto.events.EngineEvent) -> dict[str, Any]:
    """The parts of an engine event that progress displays use, as plain data."""
    for kind in ("resource_pre_event", "res_outputs_event", "res_op_failed_event"):
        payload = getattr(event, kind, None)
        if payload is not None:
            meta = payload.metadata
            return {"kind": kind, "op": str(getattr(meta.op, "value", meta.op)), "urn": meta.urn, "type": meta.type}
    if event.diagnostic_event is not None:
        d = event.diagnostic_event
        return {"kind": "diagnostic", "severity": d.severity, "message": d.message, "urn": d.urn}
    if event.summary_event is not None:
        return {"kind": "summary", "changes": event.summary_event.resource_changes}
    return {"kind": "other"}


def _engine_message(exc: auto.CommandError) -> str:
    """The engine's own error lines, without the Automation API's command dump (which can be long)."""
    text = str(exc)
    stderr = text.split("stderr:", 1)[1] if "stderr:" in text else text
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    # The Python program's KeyboardInterrupt on cancellation is noise, not the reason.
    lines = [ln for ln in lines if "KeyboardInterrupt" not in ln]
    return "\n".join(lines[-20:]) or text[-2000:]
