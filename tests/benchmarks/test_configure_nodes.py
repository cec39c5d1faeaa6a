"""Fast tier: the configure benchmark reports a failed run from its artifacts instead of timing it.

The failed run is real: ansible-runner against a closed port on loopback, so the artifacts are
the ones a real failure leaves.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from nodeconfig import hostkeys
from nodeconfig.configure import Target, configure
from nodeconfig.runner import HostResult, RunResult
from nodeconfig.settings import TUNED, SshAccess

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("configure_nodes", REPO / "benchmarks" / "configure_nodes.py")
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
sys.modules["configure_nodes"] = bench  # dataclasses look their module up while defining
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    state = tmp_path_factory.mktemp("state")
    inventory = {
        "all": {
            "vars": {},
            "children": {
                "gpu": {"children": {"su01": {"hosts": {"gpu-0001": {"ansible_host": "127.0.0.1", "ansible_port": 1}}}}},
                "storage": {"hosts": {}},
                "management": {"hosts": {}},
            },
        }
    }
    access = SshAccess(
        ssh_config=hostkeys.site_ssh_config("bench-test", state, None),
        control_path=hostkeys.site_control_path(state),
        known_hosts=(hostkeys.recorded(state),),
    )
    result = configure(Target("bench-test", inventory, access, state), profile=TUNED, tags="time_sync")
    Path(access.control_path).parent.rmdir()  # no master ever opened: the directory is empty
    assert not result.ok
    return result


def converged_run(tmp_path: Path, seconds: float) -> RunResult:
    host = HostResult("n1", "all", ok=5)
    return RunResult(tmp_path, "tuned", False, {"all": "successful"}, {"n1": host}, seconds)


def test_a_failed_run_names_host_and_task_from_its_artifacts(failed_run: RunResult) -> None:
    lines = bench.failures(failed_run)
    assert lines and lines[0].startswith("gpu-0001: Gathering Facts: unreachable: ")
    assert "Connection refused" in lines[0] or "port 1" in lines[0], lines[0]


def test_the_benchmark_exits_1_and_prints_no_figures_for_a_failed_run(
    failed_run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(stack: str, profile: str, size: int, prefix: str):
        if size == 1:
            return bench.Measured(converged_run(tmp_path, 10.0), converged_run(tmp_path, 2.0))
        return bench.Measured(failed_run, None)

    assert bench.main(["--sizes", "1,8", "--profiles", "tuned"], run=run) == 1
    out = capsys.readouterr()
    rows = [line.split() for line in out.out.splitlines() if line.split()[:1] == ["tuned"]]
    assert rows[0][:5] == ["tuned", "1", "10.0", "2.0", "0.20"]
    assert rows[1][:2] == ["tuned", "8:"] and "did NOT converge" in " ".join(rows[1])
    assert "gpu-0001: Gathering Facts: unreachable" in out.out
    assert "8 nodes / 1 node" not in out.out  # no ratio from a failed measurement
    assert "1 of 2 measurement(s) did not converge: tuned 8 node(s)" in out.err


def test_a_rerun_that_changes_something_is_not_converged(tmp_path: Path) -> None:
    events = tmp_path / "artifacts" / "su01" / "job_events"
    events.mkdir(parents=True)
    event = {"event": "runner_on_ok", "event_data": {"host": "n1", "task": "Write chrony.conf", "res": {"changed": True}}}
    (events / "7-abc.json").write_text(json.dumps(event))
    (events / "8-def.json").write_text('{"event": "runner_on_ok", "event_data"')  # cut off by a kill
    rerun = RunResult(tmp_path, "tuned", False, {"su01": "successful"}, {"n1": HostResult("n1", "su01", ok=9, changed=1)}, 1.0)
    measured = bench.Measured(converged_run(tmp_path, 10.0), rerun)
    assert not measured.converged
    assert bench.failures(rerun, rerun=True) == ["n1: Write chrony.conf: changed on the rerun"]
    printed: list[str] = []
    bench.report_failure("tuned 1", measured, out=printed.append)
    assert printed[0].startswith("tuned 1: rerun did NOT converge")


def test_task_times_read_each_host_result_from_the_artifacts(failed_run: RunResult) -> None:
    times = bench.task_times(failed_run.run_dir)
    assert list(times) == ["play: Gathering Facts"]
    count, seconds = times["play: Gathering Facts"]
    assert count == 1 and 0 <= seconds < 60
