"""The registration stack traces the program sends are cut to the project's own frames."""

from __future__ import annotations

from pathlib import Path

import pulumi.runtime.resource as sdk_resource
from pulumi.runtime.proto import source_pb2

from stacks.registration_trace import PROJECT, keep_project_frames, project_frames


def frame(path: str, line: int) -> source_pb2.StackFrame:
    return source_pb2.StackFrame(pc=source_pb2.SourcePosition(uri=Path(path).as_uri(), line=line))


def test_only_the_projects_files_are_kept_in_their_order():
    root = Path("/srv/sovereign")
    trace = source_pb2.StackTrace(frames=[
        frame("/srv/sovereign/stacks/providers/redfish_machine.py", 357),
        frame("/srv/sovereign/.venv/lib/python3.11/site-packages/pulumi/runtime/stack.py", 237),
        frame("/srv/sovereign/stacks/program.py", 144),
        frame("/usr/lib/python3.11/asyncio/base_events.py", 640),
        frame("/srv/sovereign-other/stacks/program.py", 1),
    ])
    kept = project_frames(trace, root)
    assert [(f.pc.uri.rsplit("/", 1)[-1], f.pc.line) for f in kept.frames] == [("redfish_machine.py", 357),
                                                                               ("program.py", 144)]


def test_a_unit_stack_names_the_projects_files_from_its_engine_s_root():
    """A scalable unit's stack runs from the units' workspace (stacks.machine_stacks); its frames
    are re-rooted there so the engine records `project:///stacks/...` as for the site's stack."""
    trace = source_pb2.StackTrace(frames=[frame("/srv/sovereign/stacks/program.py", 98),
                                          frame("/usr/lib/python3.11/asyncio/events.py", 80)])
    kept = project_frames(trace, Path("/srv/sovereign"), Path("/var/state/machines"))
    assert [f.pc.uri for f in kept.frames] == ["file:///var/state/machines/stacks/program.py"]


def test_the_sdk_sends_the_cut_trace_once_installed():
    original = sdk_resource._get_stack_trace
    full = source_pb2.StackTrace(frames=[frame(str(PROJECT / "stacks" / "program.py"), 144),
                                         frame("/usr/lib/python3.11/asyncio/events.py", 80)])
    try:
        sdk_resource._get_stack_trace = lambda: full
        keep_project_frames()
        installed = sdk_resource._get_stack_trace
        keep_project_frames()  # a second call changes nothing
        assert sdk_resource._get_stack_trace is installed
        assert [f.pc.line for f in installed().frames] == [144]
    finally:
        sdk_resource._get_stack_trace = original
