"""Properties of the model and the sizing, over generated partnerships and arbitrary YAML."""

from __future__ import annotations

import ipaddress
import itertools

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.design.loader import InputError, parse, validate_mapping
from stacks.design.sizing import SizingErrors, design
from tests.strategies import partnerships, yaml_values


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
        assert site.gpus >= site.target_gpus - site.counted_gpus
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
