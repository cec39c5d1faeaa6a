"""Real tier: Sovereign as a country's project takes it — a wheel (`python -m build`) installed into a
fresh virtualenv outside this checkout, used from an empty directory: init, new, validate, plan,
fleet, and configure --check against lab nodes, with the project's own role first in the roles path.
Nothing is written outside that directory and the state dir: not into the checkout, not into the
installed package, not into $HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab_session import fresh_lab

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout, and nothing else of it."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], timeout=900)
    (wheel,) = dist.glob("sovereign-*.whl")
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(root)])
    _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], timeout=1800)
    return root


@pytest.fixture(scope="module")
def lab():
    with fresh_lab("w", 1) as node_lab:
        yield node_lab


@pytest.fixture(scope="module")
def user(venv: Path, lab) -> Iterator[dict[str, Path]]:
    """An empty working directory and an empty home. Short: until SSH's ControlPath leaves the
    state dir (issue 6), the socket path under <project>/.sovereign must fit in 107 bytes."""
    work = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    home = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))
    try:
        yield {"work": work, "home": home}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def sovereign(venv: Path, user: dict[str, Path], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(user["home"]),
        "SOVEREIGN_STATE": os.environ["SOVEREIGN_STATE"],  # where fresh_lab keeps the lab's spec and key
        "PYTHONDONTWRITEBYTECODE": "1",  # so a file appearing in the venv can only be the tool's doing
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [str(venv / "bin" / "sovereign"), *args], cwd=cwd or user["work"], env=env,
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_the_whole_flow_from_the_wheel(venv: Path, lab, user: dict[str, Path]) -> None:
    work, home = user["work"], user["home"]
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import stacks, nodeconfig; print(stacks.__file__); print(nodeconfig.__file__)"],
        cwd=work, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert all(Path(line).is_relative_to(venv) for line in located.stdout.split()), located.stdout
    checkout_before = _run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO).stdout
    venv_before = snapshot(venv)

    def ok(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = sovereign(venv, user, *args, cwd=cwd)
        assert result.returncode == 0, f"sovereign {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result

    # Outside a project, a stack name cannot be found: exit 3 and the way out.
    outside = sovereign(venv, user, "validate", "ke-staging")
    assert outside.returncode == 3 and "sovereign init" in outside.stderr, outside.stderr

    init = json.loads(ok("init", "--country", "ke", "--template", "greenfield", "--json").stdout)
    assert init["project"] == str(work) and init["stack"] == "ke-staging"
    ok("new", "de", "--template", "expand")
    (work / "docs").mkdir()
    ok("validate", "ke-staging", "de-staging", cwd=work / "docs")
    plan = json.loads(ok("plan", "ke-staging", "--json").stdout)
    assert plan["country"] == "KE"
    ok("plan", "ke-staging", "--out", "plans")
    assert (work / "plans" / "ke-staging" / "plan.json").is_file()
    fleet = json.loads(ok("fleet", "--json").stdout)
    assert sorted(row["stack"] for row in fleet["stacks"]) == ["de-staging", "ke-staging"]

    # configure --check with the shipped roles and playbook, against a real node over SSH.
    check = json.loads(ok("configure", "ke-staging", "--lab", lab.name, "--check", "--json").stdout)
    assert check["check"] is True and check["ok"] is True, check
    assert [h["changed"] > 0 for h in check["hosts"]] == [True], check["hosts"]
    runs = work / ".sovereign" / "configure" / f"lab-{lab.name}" / "runs"
    assert len(list(runs.iterdir())) == 1, "the run's artifacts belong to the project"

    # A role of the project's own comes before the shipped role of the same name.
    tasks = work / "roles" / "time_sync" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(
        "---\n- name: Time sync as this country does it\n  ansible.builtin.debug:\n    msg: project role\n",
        encoding="utf-8",
    )
    ok("configure", "ke-staging", "--lab", lab.name, "--check", "--tags", "time_sync", "--json")
    newest = max(runs.iterdir())
    events = "".join(p.read_text(encoding="utf-8") for p in newest.rglob("job_events/*.json"))
    assert "Time sync as this country does it" in events
    assert "Write chrony.conf" not in events and "Load the OS family variables" not in events

    # Nothing written outside the project and the state dir.
    assert _run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO).stdout == checkout_before
    assert snapshot(venv) == venv_before, "the tool wrote into its install location"
    state = home / ".local" / "state" / "sovereign"
    strays = [p for p in home.rglob("*") if p.is_file() and not p.is_relative_to(state)]
    assert not strays, f"written into $HOME outside the state dir: {strays}"
