"""Build the pinned tools from Go modules into the cache; build only what is missing.

Each step writes its binaries under a temporary name and renames them into place, so an
interrupted build leaves either a complete tool or none, and the next `install` resumes there.
A failed step raises with the tail of its log (the whole log stays under `log/`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolchain import pins


class ToolchainError(Exception):
    """A tool is missing or failed to build; the message says which and why."""


@dataclass(frozen=True)
class Step:
    name: str
    outputs: tuple[str, ...]  # paths relative to tools_dir()
    typical: str  # cold build time on a 2-core machine, shown while it runs
    build: Callable[[Builder], None]


def _third_party() -> Path:
    """The Pulumi Python language host's source: the module proxy does not serve that module."""
    explicit = os.environ.get("SOVEREIGN_THIRD_PARTY")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "third_party")
    for root in candidates:
        if (root / "pulumi-language-python" / "main.go").is_file():
            return root / "pulumi-language-python"
    raise ToolchainError(
        "the Pulumi Python language host's source is not here (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set SOVEREIGN_THIRD_PARTY to a folder holding pulumi-language-python/main.go"
    )


def _stripped(args: tuple[str, ...]) -> tuple[str, ...]:
    """`go build`/`go install` linking without the symbol table and DWARF (`-s -w`), as upstream's
    release builds of Kubernetes and Pulumi link: the linker writes a third less and a cold build
    is faster (kwok: 7 % on top of GOGC's, 117 MB -> 84 MB); panics still print their stacks."""
    if not args or args[0] not in ("build", "install"):
        return args
    if "-ldflags" in args:
        at = args.index("-ldflags") + 1
        return (*args[:at], f"-s -w {args[at]}", *args[at + 1 :])
    return (args[0], "-ldflags", "-s -w", *args[1:])


class Builder:
    def __init__(self, root: Path, log: Path):
        self.root, self.log = root, log
        self.env = {
            **os.environ,
            **pins.go_cache_dirs(),
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",  # never download a toolchain: only the module proxy is reachable
            # The compiler's heap grows 4x before each collection: less time collecting, measured
            # 7.6 % off a cold kwok build (memory is not what a 2-core builder runs short of).
            "GOGC": "400",
        }

    def go(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        args = _stripped(args)
        with self.log.open("a") as log:
            log.write(f"$ (cd {cwd}) go {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(
                ["go", *args], cwd=cwd, env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                stderr=log, text=True, check=False,
            )
            log.write(result.stdout)
        if result.returncode != 0:
            raise ToolchainError(f"`go {' '.join(args[:2])}` failed (exit {result.returncode})")
        return result.stdout

    def module_copy(self, module: str, dest: Path) -> Path:
        """A writable copy of a module from the proxy (builds edit and generate files in it)."""
        info = json.loads(self.go("mod", "download", "-json", module, cwd=self.root))
        if info.get("Error") or not info.get("Dir"):
            raise ToolchainError(f"the module proxy did not serve {module}: {info.get('Error')}")
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(info["Dir"], dest)
        for path in [dest, *dest.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        return dest

    def install(self, built: Path, name: str) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(built, tmp)
        tmp.chmod(0o755)
        tmp.rename(target)


def _pulumi_ldflags() -> str:
    return f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{pins.PULUMI}"


def _pulumi_sources(b: Builder) -> None:
    src = b.root / "src"
    if not (src / "pkg" / "go.mod").is_file() or not (src / "sdk" / "go.mod").is_file():
        b.module_copy(f"github.com/pulumi/pulumi/sdk/v3@v{pins.PULUMI}", src / "sdk")
        b.module_copy(f"github.com/pulumi/pulumi/pkg/v3@v{pins.PULUMI}", src / "pkg")


def _pulumi_cli(b: Builder) -> None:
    _pulumi_sources(b)
    src = b.root / "src"
    out = b.root / "build" / "pulumi"
    b.go("build", "-ldflags", _pulumi_ldflags(), "-o", str(out), "./cmd/pulumi", cwd=src / "pkg")
    # The Python shims ship inside the sdk module; the engine finds them next to `pulumi`.
    b.install(src / "sdk" / "python" / "cmd" / "pulumi-language-python-exec", "bin/pulumi-language-python-exec")
    b.install(src / "sdk" / "python" / "dist" / "pulumi-resource-pulumi-python", "bin/pulumi-resource-pulumi-python")
    b.install(out, "bin/pulumi")


def _language_host(b: Builder) -> None:
    _pulumi_sources(b)
    work = b.root / "src" / "langhost"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_third_party() / "main.go", work / "main.go")
    (work / "go.mod").write_text(
        "module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3\n"
        "go 1.25\n"
        "replace (\n"
        "\tgithub.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n"
        "\tgithub.com/pulumi/pulumi/pkg/v3 => ../pkg\n"
        "\tgithub.com/pulumi/pulumi/sdk/v3 => ../sdk\n"
        ")\n"
        f"require (\n\tgithub.com/pulumi/pulumi/pkg/v3 v{pins.PULUMI}\n\tgithub.com/pulumi/pulumi/sdk/v3 v{pins.PULUMI}\n)\n"
    )
    b.go("mod", "tidy", cwd=work)
    out = b.root / "build" / "pulumi-language-python"
    b.go("build", "-ldflags", _pulumi_ldflags(), "-o", str(out), ".", cwd=work)
    b.install(out, "bin/pulumi-language-python")


def _kubernetes_plugin(b: Builder) -> None:
    src = b.root / "src" / "k8s"
    provider = src / "provider"
    if not (provider / "go.mod").is_file():
        b.module_copy(f"github.com/pulumi/pulumi-kubernetes/provider/v4@{pins.K8S_PROVIDER_MODULE}", provider)
        b.module_copy(f"github.com/pulumi/pulumi-kubernetes/sdk/v4@v{pins.K8S_SDK}", src / "sdk")
    cmd = provider / "cmd" / "pulumi-resource-kubernetes"
    # The provider embeds its schema; upstream generates it in its Makefile before building.
    b.go("run", "./generate.go", cwd=cmd, env={"VERSION": pins.K8S_PLUGIN})
    out = b.root / "build" / "pulumi-resource-kubernetes"
    ldflags = f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={pins.K8S_PLUGIN}"
    b.go("build", "-ldflags", ldflags, "-o", str(out), "./cmd/pulumi-resource-kubernetes", cwd=provider)
    # Off PATH on purpose: installed into PULUMI_HOME as a plugin (see toolchain.env).
    b.install(out, "plugins/pulumi-resource-kubernetes")


def _kube_module(b: Builder) -> tuple[Path, str]:
    """A module requiring k8s.io/kubernetes at the pin, and the ldflags that stamp its version."""
    work = b.root / "src" / "kube"
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(b.go("mod", "download", "-json", f"k8s.io/kubernetes@v{pins.KUBERNETES}", cwd=b.root))
    upstream_mod = Path(info["GoMod"]).read_text()
    minor = pins.KUBERNETES.split(".", 1)[1]
    # k8s.io/kubernetes requires its staging modules as v0.0.0; the proxy serves them as v0.<minor>.<patch>.
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[a-z0-9-]+) v0\.0\.0\s*$", upstream_mod, re.M)))
    lines = ["module local/kube", "go 1.24", f"require k8s.io/kubernetes v{pins.KUBERNETES}"]
    lines += [f"replace {m} => {m} v0.{minor}" for m in staging]
    (work / "go.mod").write_text("\n".join(lines) + "\n")
    major_minor = pins.KUBERNETES.split(".")[1]
    ldflags = " ".join(
        [
            f"-X k8s.io/component-base/version.gitVersion=v{pins.KUBERNETES}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={major_minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )
    return work, ldflags


def _kube_build(b: Builder, names: tuple[str, ...]) -> None:
    work, ldflags = _kube_module(b)
    for name in names:
        out = b.root / "build" / name
        b.go("build", "-ldflags", ldflags, "-o", str(out), f"k8s.io/kubernetes/cmd/{name}", cwd=work)
        b.install(out, f"bin/{name}")


def _kube_binaries(b: Builder) -> None:
    _kube_build(b, ("kube-apiserver", "kube-controller-manager", "kube-scheduler"))


def _kube_node_binaries(b: Builder) -> None:
    # What a real node runs: kubelet and kube-proxy, copied to the nodes by the kubernetes_node role.
    _kube_build(b, ("kubelet", "kube-proxy"))


def _pause(b: Builder) -> None:
    """The pod sandbox's `pause`, compiled static from the C source in the kubernetes module, as
    upstream's build/pause Makefile does; the lab packs it into the pause image it serves."""
    if shutil.which("gcc") is None:
        raise ToolchainError("gcc is not installed: the pause binary is compiled from C (apt-get install gcc libc6-dev)")
    info = json.loads(b.go("mod", "download", "-json", f"k8s.io/kubernetes@v{pins.KUBERNETES}", cwd=b.root))
    source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    out = b.root / "build" / "pause"
    out.parent.mkdir(parents=True, exist_ok=True)
    with b.log.open("a") as log:
        result = subprocess.run(
            ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{pins.PAUSE}-sovereign", "-o", str(out), str(source)],
            stdout=log, stderr=subprocess.STDOUT, check=False,
        )
    if result.returncode != 0:
        raise ToolchainError(f"compiling {source.name} failed (exit {result.returncode})")
    b.install(out, "bin/pause")


def _etcd(b: Builder) -> None:
    work = b.root / "src" / "etcd"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(f"module local/etcd\ngo 1.24\nrequire go.etcd.io/etcd/server/v3 v{pins.ETCD}\n")
    (work / "tools.go").write_text('package main\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\nfunc main(){}\n')
    b.go("mod", "tidy", cwd=work)
    out = b.root / "build" / "etcd"
    b.go("build", "-o", str(out), "go.etcd.io/etcd/server/v3", cwd=work)
    b.install(out, "bin/etcd")


# kwok plays the kubelet through "stages"; the binary embeds none, so the lab passes the ones
# upstream's kwokctl uses for its fast profile (nodes Ready at once, lease heartbeats; pods
# Ready at once, Job pods completed, deleted pods released).
_KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def _kwok(b: Builder) -> None:
    gobin = b.root / "build" / "kwok-bin"
    module = f"sigs.k8s.io/kwok@v{pins.KWOK}"
    b.go("install", f"sigs.k8s.io/kwok/cmd/kwok@v{pins.KWOK}", cwd=b.root, env={"GOBIN": str(gobin)})
    source = Path(json.loads(b.go("mod", "download", "-json", module, cwd=b.root))["Dir"]) / "kustomize" / "stage"
    docs = [(source / stage).read_text().strip() for stage in _KWOK_STAGES]
    stages = b.root / "build" / "kwok-stages.yaml"
    stages.write_text("\n---\n".join(docs) + "\n")
    share = b.root / "share"
    share.mkdir(exist_ok=True)
    stages.rename(share / "kwok-stages.yaml")
    b.install(gobin / "kwok", "bin/kwok")


def _promtool(b: Builder) -> None:
    gobin = b.root / "build" / "promtool-bin"
    # Rule tests need no service discovery: without the cloud SDs' SDKs (Prometheus' remove_all_sd
    # tag) there is less to compile, and the binary is 77 MB instead of 123 MB.
    b.go("install", "-tags", "remove_all_sd", f"github.com/prometheus/prometheus/cmd/promtool@v{pins.PROMETHEUS}",
         cwd=b.root, env={"GOBIN": str(gobin)})
    b.install(gobin / "promtool", "bin/promtool")


STEPS: tuple[Step, ...] = (
    Step("pulumi", ("bin/pulumi", "bin/pulumi-language-python-exec", "bin/pulumi-resource-pulumi-python"),
         "about 7 min", _pulumi_cli),
    Step("pulumi-language-python", ("bin/pulumi-language-python",), "about 20 s", _language_host),
    Step("pulumi-resource-kubernetes", ("plugins/pulumi-resource-kubernetes",), "about 12 min", _kubernetes_plugin),
    Step("kube-binaries", ("bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-scheduler"),
         "about 7.5 min", _kube_binaries),
    Step("etcd", ("bin/etcd",), "about 20 s", _etcd),
    Step("kwok", ("bin/kwok", "share/kwok-stages.yaml"), "about 2 min", _kwok),
    Step("kube-node", ("bin/kubelet", "bin/kube-proxy"), "about 4 min", _kube_node_binaries),
    Step("pause", ("bin/pause",), "about 5 s", _pause),
    Step("promtool", ("bin/promtool",), "about 6.5 min", _promtool),
)


def adopt_installed_pulumi(root: Path) -> bool:
    """Use a `pulumi` already on PATH when it is exactly the pinned version and its Python
    language host and shims sit beside it (an official install has them): no 5-minute build."""
    found = shutil.which("pulumi")
    if found is None or Path(found).resolve().parent == (root / "bin").resolve():
        return False
    try:
        version = subprocess.run([found, "version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    if version.strip() != f"v{pins.PULUMI}":
        return False
    source = Path(found).resolve().parent
    names = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")
    if not all((source / n).is_file() for n in names):
        return False
    (root / "bin").mkdir(parents=True, exist_ok=True)
    for name in names:
        link = root / "bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(source / name)
    return True


def missing(step: Step, root: Path | None = None) -> list[str]:
    root = root or pins.tools_dir()
    return [o for o in step.outputs if not (root / o).is_file()]


def install(progress: Callable[[str], None] = lambda _msg: None, only: tuple[str, ...] = ()) -> dict[str, float]:
    """Build every missing tool (or only the named steps); returns seconds per step built (empty
    when all were cached)."""
    if shutil.which("go") is None:
        raise ToolchainError("Go is not installed: the pinned tools are built from Go modules (Go 1.25 or newer)")
    root = pins.tools_dir()
    (root / "log").mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if not only and missing(STEPS[0], root) and adopt_installed_pulumi(root):
        progress(f"using the installed pulumi v{pins.PULUMI} ({shutil.which('pulumi')})")
    for step in STEPS:
        if (only and step.name not in only) or not missing(step, root):
            continue
        log = root / "log" / f"{step.name}.log"
        log.write_text("")
        progress(f"building {step.name} ({step.typical} cold; log {log})")
        started = time.monotonic()
        try:
            step.build(Builder(root, log))
        except ToolchainError as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise ToolchainError(f"{step.name}: {exc}\n--- last lines of {log} ---\n{tail}") from None
        timings[step.name] = time.monotonic() - started
        progress(f"built {step.name} in {timings[step.name]:.0f} s")
    return timings
