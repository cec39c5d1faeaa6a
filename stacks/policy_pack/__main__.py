"""The sovereignty rules as a mandatory Pulumi policy pack: checked by the engine on the planned
resources, so a violation fails `preview` and `up` before anything is created. The API server
enforces the same rules at run time (stacks/design/admission.py); this is the earlier gate.

The allowed registries, chart repository and residency come from the partnership, passed by
`sovereign up/preview` as the pack's configuration (stacks/policy_config.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")
_PUBLIC = {"LoadBalancer", "NodePort"}


def _images(value: Any) -> Iterator[str]:
    # Resource properties arrive as read-only proxies (Mapping, Sequence), not dicts and lists.
    if isinstance(value, Mapping):
        for key in _CONTAINERS:
            for container in value.get(key) or []:
                if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                    yield container["image"]
        for key, child in value.items():
            if key not in _CONTAINERS:
                yield from _images(child)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            yield from _images(item)


def _config(args: Any) -> dict[str, Any]:
    return dict(args.get_config() or {})


def images_from_mirrors(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:"):
        return
    allowed = list(_config(args).get("prefixes") or [])
    if not allowed:
        return
    for image in sorted(set(_images(args.props))):
        if not any(image.startswith(prefix) for prefix in allowed):
            report(f"image {image} is not from the country's registry mirrors ({', '.join(allowed)})", None)


def charts_from_mirror(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Each chart the stack installs is recorded in a ConfigMap labelled sovereign.io/record=chart
    (stacks/components/chart_release.py): its repository must be the country's chart mirror."""
    if args.resource_type != "kubernetes:core/v1:ConfigMap":
        return
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    if labels.get("sovereign.io/record") != "chart":
        return
    repo = str(_config(args).get("repository") or "").rstrip("/")
    data = args.props.get("data") or {}
    used = str(data.get("repository") or "").rstrip("/")
    if repo and used != repo:
        report(f"chart {data.get('chart')} {data.get('version')} comes from {used or 'no repository'}, "
               f"not the chart mirror {repo}", None)


def no_public_endpoints(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:Service":
        return
    kind = (args.props.get("spec") or {}).get("type")
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    if kind in _PUBLIC and labels.get("sovereign.io/public-endpoint") != "approved":
        report(f"a {kind} service is a public endpoint: label it sovereign.io/public-endpoint=approved after review", None)


def data_residency(args: StackValidationArgs, report: ReportViolation) -> None:
    config = _config(args)
    allowed = set(config.get("residency") or [])
    for site in config.get("sites") or []:
        if allowed and site.get("country") not in allowed:
            report(f"site {site.get('name')} is in {site.get('country')}, outside the data residency list "
                   f"({', '.join(sorted(allowed))})", None)


def _schema(**properties: dict[str, Any]):
    from pulumi_policy import PolicyConfigSchema

    return PolicyConfigSchema(properties=properties)


PolicyPack(
    name="sovereign-sovereignty",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="images-from-mirrors", description="Container images only from the country's registry mirrors.",
            validate=images_from_mirrors, config_schema=_schema(prefixes={"type": "array", "items": {"type": "string"}})),
        ResourceValidationPolicy(
            name="charts-from-mirror", description="Helm charts only from the country's chart mirror.",
            validate=charts_from_mirror, config_schema=_schema(repository={"type": "string"})),
        ResourceValidationPolicy(
            name="no-public-endpoints", description="No LoadBalancer or NodePort service without a reviewed approval.",
            validate=no_public_endpoints),
        StackValidationPolicy(
            name="data-residency", description="Every site lies in a country of the data residency list.",
            validate=data_residency,
            config_schema=_schema(residency={"type": "array", "items": {"type": "string"}},
                                  sites={"type": "array", "items": {"type": "object"}})),
    ],
)
