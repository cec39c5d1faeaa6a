"""Files the CLI writes are whole or absent: interrupted anywhere, `plan --out` leaves the complete
old set or the complete new set; a full disk leaves the old file; symlinks are not followed."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli.main import cli
from stacks.design import atomic
from stacks.design.loader import load_and_design

REPO = Path(__file__).resolve().parents[2]
ATOMIC_FILE = atomic.__file__


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def plan(out: Path, *extra: str, stack: str = "ke-staging"):
    return CliRunner().invoke(cli, ["plan", stack, "--out", str(out), *extra])


class InterruptAtLine:
    """Raise KeyboardInterrupt at the n-th line stacks/design/atomic.py executes: Ctrl-C at any point."""

    def __init__(self, n: int | None):
        self.n, self.seen = n, 0

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename != ATOMIC_FILE:
            return None
        return self.local

    def local(self, frame, event, arg):
        if event == "line":
            if self.seen == self.n:
                raise KeyboardInterrupt
            self.seen += 1
        return self.local

    def run(self, out: Path):
        sys.settrace(self)
        try:
            return plan(out, "--json")
        finally:
            sys.settrace(None)


def test_plan_out_interrupted_at_every_line_leaves_the_old_or_the_new_set(tmp_path, monkeypatch):
    # ~75 interruption points, each a whole `plan --out`: the design is loaded once to save time.
    designed = {ref: load_and_design(ref) for ref in ("ke-staging", "de-staging")}
    monkeypatch.setattr("cli.commands.plan.load_and_design", designed.__getitem__)
    out = tmp_path / "out"
    assert plan(out, stack="de-staging").exit_code == 0
    folder = out / "ke-staging"
    # The "old set" is a different stack's plan, so old and new differ in every byte.
    (out / "de-staging").rename(folder)
    old = contents(folder)
    counter = InterruptAtLine(None)  # counts the lines a replacing run executes
    assert counter.run(out).exit_code == 0
    new = contents(folder)
    assert set(old) == set(new) == {"plan.json", "plan.txt"} and old != new
    atomic.replace_directory(folder, old)
    outcomes = set()
    for n in range(counter.seen + 1):
        result = InterruptAtLine(n).run(out)
        assert result.exit_code in (0, 130), result.output
        now = contents(folder)
        assert now in (old, new), f"interrupted at line event {n}: a mixed or partial set"
        outcomes.add("new" if now == new else "old")
        if now == new:  # put the old set back for the next interruption point
            atomic.replace_directory(folder, old)
    assert outcomes == {"old", "new"}


def test_plan_out_says_which_files_it_replaced(tmp_path):
    first = plan(tmp_path, "--json")
    assert json.loads(first.stdout)["written"]["replaced"] == []
    second = plan(tmp_path)
    assert second.exit_code == 0 and "replaced plan.json, plan.txt in" in second.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left behind


def test_plan_out_does_not_follow_or_destroy_a_symlink(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "ke-staging").symlink_to(elsewhere)
    result = plan(out, "--json")
    assert result.exit_code == 2 and "symlink" in json.loads(result.stdout)["problems"][0]["message"]
    assert contents(elsewhere) == {"precious.txt": b"keep"} and (out / "ke-staging").is_symlink()


def test_plan_out_refuses_to_delete_files_it_did_not_write(tmp_path):
    assert plan(tmp_path).exit_code == 0
    (tmp_path / "ke-staging" / "notes.md").write_text("mine")
    result = plan(tmp_path, "--json")
    assert result.exit_code == 2 and "notes.md" in result.stdout
    assert (tmp_path / "ke-staging" / "notes.md").read_text() == "mine"


def test_plan_json_being_a_directory_is_replaced_as_part_of_the_set(tmp_path):
    (tmp_path / "ke-staging" / "plan.json").mkdir(parents=True)
    result = plan(tmp_path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["written"]["replaced"] == ["plan.json"]
    assert json.loads((tmp_path / "ke-staging" / "plan.json").read_text())["country"] == "KE"


@pytest.mark.parametrize("name", ["Pulumi....yaml", "Pulumi...yaml", "..yaml"])
def test_a_stack_file_name_cannot_make_plan_write_outside_dir(tmp_path, name):
    source = tmp_path / "src" / name
    source.parent.mkdir()
    source.write_bytes((REPO / "countries" / "Pulumi.ke-staging.yaml").read_bytes())
    out = tmp_path / "a" / "out"
    result = CliRunner().invoke(cli, ["plan", str(source), "--out", str(out), "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["problems"][0]["field"] == "--out"
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").rglob("plan.json"))


def test_swap_falls_back_to_two_renames_without_rename_exchange(tmp_path, monkeypatch):
    def unsupported(src, dst, flags):
        raise OSError(22, "Invalid argument", str(dst))

    monkeypatch.setattr(atomic, "_renameat2", unsupported)
    atomic.replace_directory(tmp_path / "set", {"a": "1", "b": "2"})
    assert atomic.replace_directory(tmp_path / "set", {"a": "3", "b": "4"}) == ["a", "b"]
    assert contents(tmp_path / "set") == {"a": b"3", "b": b"4"}
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_write_file_replaces_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep")
    link = tmp_path / "Pulumi.ke-staging.yaml"
    link.symlink_to(target)
    assert atomic.write_file(link, "new") is True
    assert target.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"


def test_write_file_without_replace_refuses_even_a_dangling_link(tmp_path):
    link = tmp_path / "f"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        atomic.write_file(link, "x", replace=False)
    assert not (tmp_path / "nowhere").exists()


def _limited(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_new_force_on_a_full_disk_keeps_the_old_file_and_a_retry_works(tmp_path):
    # `ulimit -f 1`: writes past 1 KiB fail (EFBIG), as on a full disk; the starter is ~4 KiB.
    env = dict(os.environ)
    path = tmp_path / "Pulumi.ke-staging.yaml"
    path.write_text("# reviewed by hand\n")
    command = [sys.executable, "-m", "cli", "new", "KE", "--template", "expand", "--force", "--out", str(tmp_path), "--json"]
    proc = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, preexec_fn=_limited(1024))
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and json.loads(proc.stdout)["ok"] is False
    assert path.read_text() == "# reviewed by hand\n"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no stub, no temp file
    retry = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    assert retry.returncode == 0 and "mode: expand" in path.read_text()


def test_plan_out_on_a_full_disk_keeps_the_old_set(tmp_path):
    assert plan(tmp_path).exit_code == 0
    old = contents(tmp_path / "ke-staging")
    command = [sys.executable, "-m", "cli", "plan", "in-staging", "--out", str(tmp_path), "--json"]
    (tmp_path / "ke-staging").rename(tmp_path / "in-staging")
    proc = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, preexec_fn=_limited(4096))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 3
    assert contents(tmp_path / "in-staging") == old
    assert [p.name for p in tmp_path.iterdir()] == ["in-staging"]


def test_mode_is_exact_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        atomic.write_file(tmp_path / "config", "x", mode=0o644)
        atomic.write_file(tmp_path / "key", "k", mode=0o600)
        atomic.write_file(tmp_path / "plain", "p")
    finally:
        os.umask(previous)
    assert oct((tmp_path / "config").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "key").stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "plain").stat().st_mode & 0o777) == oct(0o600)  # umask 077 applied


def test_configure_inventory_survives_a_full_disk(tmp_path, monkeypatch):
    # nodeconfig writes through the same module: a failed write leaves the previous inventory whole.
    from nodeconfig import configure

    target = SimpleNamespace(state_dir=tmp_path, inventory={"all": {"hosts": {"a": {}}}})
    path = configure.write_inventory(target)
    before = path.read_bytes()
    target.inventory = {"all": {"hosts": {f"host{i}": {"x": "y" * 100} for i in range(1000)}}}

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        configure.write_inventory(target)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.yml"]  # no temp file left


# A plain write is right only where the file is not state someone reads back whole. Each entry:
# (file, a piece of the line, why).
PLAIN_WRITES = [
    ("nodeconfig/runner.py", "os.open(secrets_file", "new file, O_EXCL, in a private /dev/shm dir deleted after the run"),
    ("nodeconfig/runner.py", 'os.fdopen(fd, "w"', "the same secrets file"),
    ("nodeconfig/cluster_join.py", "fd = os.open(path,", "the join's cluster credentials: new files, O_EXCL, 0600, "
     "in a private memory dir deleted after the join"),
    ("nodeconfig/cluster_join.py", 'os.fdopen(fd, "w"', "the same credential files"),
    ("nodeconfig/acceptance/run.py", "cached.write_text", "a private TemporaryDirectory for one verify run"),
    ("lab/rootfs.py", "write_text(", "inside the image's build directory, renamed into place when complete"),
    ("lab/rootfs.py", '.lock", "a"', "a lock file: its content is never read"),
    ("lab/registry.py", '"a") as fh', "a lock file: its content is never read"),
    ("lab/processes.py", 'open("ab")', "a daemon's log, appended to"),
    ("lab/network.py", "_FORWARD.write_text", "/proc/sys: a kernel switch, which a rename cannot replace"),
    ("toolchain/build.py", 'open("a")', "the build log, appended to"),
    ("toolchain/build.py", "write_text(", "inside a build directory; each tool is installed by rename"),
    ("lab/bmc.py", '(source / "README.txt").write_text', "an ISO's source folder; the ISO is renamed in"),
    ("stacks/providers/seed_iso.py", "(source / name).write_text", "a temp dir packed into the seed ISO, renamed in"),
]
WRITE = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*[\"'][wax]b?[\"']|O_WRONLY")


def test_every_state_file_is_written_through_atomic():
    found = []
    for package in ("cli", "nodeconfig", "report", "lab", "stacks", "toolchain", "benchmarks"):
        for source in sorted((REPO / package).rglob("*.py")):
            relative = source.relative_to(REPO).as_posix()
            if relative == "stacks/design/atomic.py":
                continue
            for number, line in enumerate(source.read_text().splitlines(), 1):
                if WRITE.search(line) and not any(f == relative and piece in line for f, piece, _ in PLAIN_WRITES):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "write these with stacks.design.atomic (or list why not in PLAIN_WRITES):\n" + "\n".join(found)
