"""Registration stack traces cut to the project's own frames.

Since Pulumi 3.195 the Python SDK sends each resource's whole call stack with its registration and
the engine keeps it in the state. Here that is 17 frames, 11 of them the language host's and
asyncio's, the same for every resource: 2.5 KB of a server's machine resource (6.8 KB) and of its
seed (7.9 KB), measured on a 300-server checkpoint. The local backend rewrites the whole checkpoint
at every step, so those bytes are engine work at every step of a site of thousands. The SDK has no
setting for it; the program replaces the SDK's trace function with one that keeps the frames in the
project's own files (stacks/, countries/...), which are the ones that say where a resource comes from.

The engine records each frame relative to the root of the workspace it runs in. A scalable unit's
machine stack runs the project's program from a workspace of its own (stacks.machine_stacks), so
there the frames are re-rooted at that workspace: `project:///stacks/...` names the project's file
in both kinds of stack, rather than a path climbing out of the state directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pulumi.runtime.resource as sdk_resource
from pulumi.runtime.proto import source_pb2

PROJECT = Path(__file__).resolve().parents[1]


def project_frames(trace: source_pb2.StackTrace, root: Path = PROJECT,
                   engine_root: Path | None = None) -> source_pb2.StackTrace:
    """The frames in files under `root`, outside its virtual environment, in their order; with
    `engine_root`, each file named as if the project were there."""
    prefix = root.as_uri() + "/"
    kept = [frame for frame in trace.frames
            if frame.pc.uri.startswith(prefix) and "/site-packages/" not in frame.pc.uri]
    if engine_root is not None and engine_root != root:
        target = engine_root.as_uri() + "/"
        for frame in kept:
            frame.pc.uri = target + frame.pc.uri.removeprefix(prefix)
    return source_pb2.StackTrace(frames=kept)


def keep_project_frames(root: Path = PROJECT, engine_root: Path | None = None) -> None:
    """Make the SDK send only the project's frames with every registration from now on."""
    original: Callable[[], source_pb2.StackTrace] = sdk_resource._get_stack_trace  # fails loudly if moved
    if getattr(original, "project_frames_only", False):
        return

    def trace() -> source_pb2.StackTrace:
        return project_frames(original(), root, engine_root)

    trace.project_frames_only = True  # type: ignore[attr-defined]
    sdk_resource._get_stack_trace = trace
