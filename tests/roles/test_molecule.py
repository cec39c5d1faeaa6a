"""Real tier: `molecule test` per role - lab nodes up, check mode on the fresh node, converge,
idempotence (a second converge changes nothing), verify, lab down - then nothing of the lab left."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.roles.helpers import ROLES, ROLES_DIR, tool, tool_env


def lab_name(role: str) -> str:
    scenario = yaml.safe_load((ROLES_DIR / role / "molecule" / "default" / "molecule.yml").read_text())
    return scenario["ansible"]["env"]["SOVEREIGN_LAB"]


# Roles whose scenario repeats, on the same kind of lab, a dedicated real-tier test that `make test`
# runs anyway: their scenario stays (a role author runs `molecule test` in the role's folder) but
# is not run twice in CI, whose time budget it would otherwise spend again.
COVERED_BY = {
    "kubernetes_node": "tests/roles/test_expand_join_lab.py",
    "kubernetes_control_plane": "tests/nodeconfig/test_configure_lab.py",
}


def test_roles_left_to_another_test_are_covered_there() -> None:
    repo = ROLES_DIR.parent
    for role, test in COVERED_BY.items():
        assert role in ROLES and (repo / test).is_file(), (role, test)
        assert f"roles/{role}" in (repo / test).read_text() or role in (repo / test).read_text()


def test_every_role_has_a_scenario() -> None:
    missing = [r for r in ROLES if not (ROLES_DIR / r / "molecule" / "default" / "molecule.yml").is_file()]
    assert not missing, f"roles without a Molecule scenario: {missing}"
    names = [lab_name(r) for r in ROLES]
    assert len(set(names)) == len(names), f"scenarios share a lab name: {names}"


@pytest.mark.lab
@pytest.mark.parametrize("role", [r for r in ROLES if r not in COVERED_BY])
def test_molecule(role: str) -> None:
    name = lab_name(role)
    sovereign = tool("sovereign")
    try:
        out = subprocess.run(
            [tool("molecule"), "test"],
            cwd=ROLES_DIR / role,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=3600,
        )
        assert out.returncode == 0, f"molecule test failed for {role}:\n{out.stdout[-20000:]}\n{out.stderr[-5000:]}"
    finally:
        # Molecule's destroy ran unless it crashed first; down is safe to repeat.
        subprocess.run([sovereign, "lab", "nodes", "down", "--name", name, "--json"], env=tool_env(), capture_output=True, timeout=300)
    status = subprocess.run(
        [sovereign, "lab", "nodes", "status", "--name", name, "--json"], env=tool_env(), capture_output=True, text=True, timeout=60
    )
    assert json.loads(status.stdout)["exists"] is False, f"lab {name} still exists after molecule test"
