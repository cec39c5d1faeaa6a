"""Properties of the model and the sizing, over generated partnerships and arbitrary YAML."""

from __future__ import annotations

import ipaddress
import itertools

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.design.catalog import PLATFORMS
from stacks.design.loader import InputError, parse, validate_mapping
from stacks.design.sizing import SizingErrors, design

AIR = [k for k, p in PLATFORMS.items() if not p.liquid_cooled]


@st.composite
def partnerships(draw):
    sites = []
    for i in range(draw(st.integers(1, 3))):
        platform = draw(st.sampled_from(sorted(PLATFORMS)))
        liquid = PLATFORMS[platform].liquid_cooled or draw(st.booleans())
        prefix = draw(st.integers(16, 22))
        sites.append(
            {
                "name": f"site-{i}",
                "city": "City",
                "region": "Region",
                "power_budget_mw": draw(st.floats(0.5, 400)),
                "pue": draw(st.floats(1.05, 2.0)),
                "cooling": "liquid" if liquid else "air",
                "max_rack_kw": draw(st.floats(20, 160)),
                "networks": {
                    "data": f"10.{i * 3}.0.0/{prefix}",
                    "storage": f"10.{i * 3 + 1}.0.0/{prefix}",
                    "oob": f"10.{i * 3 + 2}.0.0/{prefix}",
                },
                "capacity": {"platform": platform, "gpus": draw(st.integers(1, 120_000))},
            }
        )
    share = draw(st.floats(0.05, 1.0))
    funding = [{"party": "Gov", "kind": "government", "share": share}]
    if share < 1.0:
        funding.append({"party": "Partner", "kind": "partner", "share": 1.0 - share})
    return {
        "schema_version": 1, "name": "T", "country": "BR", "languages": ["pt"], "currency": "BRL",
        "operating_authority": "MCTI", "mode": "greenfield", "funding": funding,
        "sovereignty": {"data_residency": ["BR"]}, "sites": sites,
    }


def _designed(data):
    try:
        partnership = validate_mapping(data, "generated")
    except InputError:
        return None, None
    try:
        return partnership, design(partnership)
    except SizingErrors as exc:
        assert all("site 'site-" in str(e) for _, e in exc.errors)
        return partnership, None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partnerships())
def test_sizing_is_deterministic(data):
    _, first = _designed(data)
    _, second = _designed(data)
    assert first == second


@settings(max_examples=150, deadline=None)
@given(partnerships())
def test_power_never_exceeds_budget_and_ranges_never_overlap(data):
    partnership, planned = _designed(data)
    if planned is None:
        return
    ranges = []
    for site, spec in zip(planned.sites, partnership.sites):
        assert site.facility_mw <= spec.power_budget_mw + 1e-6
        assert site.rack_kw <= spec.max_rack_kw + 1e-9
        assert site.gpus >= site.target_gpus - site.existing_gpus
        for pool in site.pools.values():
            net = ipaddress.ip_network(pool.cidr)
            if pool.allocated:
                first, last = ipaddress.ip_address(pool.first), ipaddress.ip_address(pool.last)
                assert first in net and last in net and int(last) - int(first) + 1 == pool.allocated
                assert first > net.network_address + 16 and last < net.broadcast_address
                ranges.append((int(first), int(last)))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end < start


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), yaml_values.map(lambda v: yaml.safe_dump(v))))
def test_arbitrary_yaml_never_tracebacks(text):
    try:
        parse(text, "fuzz.yaml")
    except InputError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(partnerships(), st.data())
def test_mutated_partnership_never_tracebacks(data, draw):
    # Replace one leaf anywhere with a value of a random type: only InputError/SizingErrors escape.
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        else:
            paths.append(path)

    walk(data, ())
    path = draw.draw(st.sampled_from(paths))
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = draw.draw(yaml_values)
    text = yaml.safe_dump({"config": {"sovereign:partnership": data}})
    try:
        design(parse(text, "mutated.yaml"))
    except (InputError, SizingErrors):
        pass
