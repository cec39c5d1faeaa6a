"""Everything a site must mirror before an air-gapped install: charts, container images, OS
packages and drivers, with versions and digests where known.

Images are read from what the real engine would apply — the preview's resource inputs, i.e. the
charts rendered with this stack's values — so the list cannot drift from the objects. Operand
images that an operator starts at run time (the GPU and Network Operators' driver, toolkit,
device plugin…) are read from the custom resources that name them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from pulumi import automation as auto
from ruamel.yaml import YAML

from stacks import chart_index
from stacks.automation import engine_environment, run
from stacks.design.assets import asset_dir
from stacks.design.charts import CHARTS
from stacks.design.loader import load
from stacks.platform_layer import MIRROR_CA_ENV, MIRROR_ENV, ChartSettings

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def images_in(value: Any) -> Iterator[str]:
    """Images a Kubernetes object names: pod templates' containers, and operand specs of the form
    {repository, image, version} that an operator turns into pods (skipped when disabled)."""
    if isinstance(value, dict):
        if value.get("enabled") is False:
            return
        for key in _CONTAINER_LISTS:
            for container in value.get(key) or []:
                if isinstance(container, dict) and isinstance(container.get("image"), str):
                    yield container["image"]
        repo, image, version = value.get("repository"), value.get("image"), value.get("version")
        if all(isinstance(v, str) and v for v in (repo, image, version)):
            yield f"{repo}/{image}:{version}"
        for key, child in value.items():
            if key not in _CONTAINER_LISTS:
                yield from images_in(child)
    elif isinstance(value, list):
        for item in value:
            yield from images_in(item)


def role_packages(roles_dir: Path) -> list[dict[str, str]]:
    """OS packages the node roles install, from their defaults (templated names rendered)."""
    packages: list[dict[str, str]] = []
    for defaults in sorted(roles_dir.glob("*/defaults/main.yml")):
        role = defaults.parent.parent.name
        data = YAML(typ="safe", pure=True).load(defaults.read_text()) or {}
        env = jinja2.Environment(undefined=jinja2.StrictUndefined)
        for key, value in data.items():
            if not key.endswith("_packages") or "removed" in key or not isinstance(value, list):
                continue
            for name in value:
                try:
                    rendered = env.from_string(str(name)).render(**data)
                except jinja2.UndefinedError:
                    rendered = str(name)
                packages.append({"role": role, "variable": key, "package": rendered})
    return packages


def collect(stack: str, *, lab: str | None = None, allow_unapproved: bool = False) -> dict[str, Any]:
    """Preview the stack with the real engine and list what it needs."""
    inputs: list[Any] = []

    def capture(event: auto.events.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and pre.metadata.new is not None:
            inputs.append(pre.metadata.new.inputs)

    result = run("preview", stack, lab=lab, allow_unapproved=allow_unapproved, on_engine_event=capture)
    images = sorted({image for item in inputs for image in images_in(item)})
    partnership = load(stack)
    env = engine_environment(stack, lab)  # the same mirror settings the preview used
    settings = ChartSettings(env.get(MIRROR_ENV), env.get(MIRROR_CA_ENV))
    charts = []
    for pin in CHARTS:
        source = settings.source(pin, partnership)
        entry: dict[str, Any] = {"name": pin.name, "version": pin.version, "repository": source.repo,
                                 "upstream": pin.upstream}
        try:
            entry["digest"] = chart_index.digest(pin, source)
        except chart_index.ChartUnavailable as exc:
            entry["problem"] = str(exc)
        charts.append(entry)
    nvidia = YAML(typ="safe", pure=True).load((asset_dir("roles") / "nvidia_host" / "defaults" / "main.yml").read_text())
    drivers = [{"site": site.name, "mode": site.gpu_driver.mode.value,
                "version": site.gpu_driver.version or (f"branch {nvidia['nvidia_host_driver_branch']}"
                                                       if site.gpu_driver.mode.value == "host" else "GPU Operator default")}
               for site in partnership.sites]
    return {"stack": stack, "charts": charts, "images": images, "packages": role_packages(asset_dir("roles")),
            "drivers": drivers, "preview_resources": sum(result.changes.values())}
