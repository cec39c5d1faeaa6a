"""The `sovereign` entry point (also `python -m cli`), kept free of heavy imports on purpose.

Loading the commands imports pydantic, rich and the design model; a Ctrl-C in that second must
still end in exit 130 with one line (one JSON document with --json), not a KeyboardInterrupt
traceback. Everything after the import is cli.output's job.
"""

from __future__ import annotations

import sys  # already loaded by the interpreter: nothing to interrupt here


def main() -> None:
    try:
        from cli.main import cli
    except KeyboardInterrupt:
        args = sys.argv[1:]
        if "--json" in (args[: args.index("--")] if "--" in args else args):
            import json

            # The shape of cli.output's error document, which cannot be imported yet.
            problem = {"file": "", "line": None, "field": "", "message": "interrupted"}
            print(json.dumps({"ok": False, "exit_code": 130, "problems": [problem]}, indent=2))
        else:
            print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    cli.main(prog_name="sovereign")


def entry() -> None:
    """The process entry point (`sovereign`, `python -m cli`): `main`, then a hard exit 130 after
    an interrupt was reported (tests call `main` in-process and see the SystemExit)."""
    try:
        main()
    except SystemExit as exc:
        if exc.code == 130:
            _exit_interrupted()
        raise
    except KeyboardInterrupt:
        _exit_interrupted()  # a second Ctrl-C after the first was reported


def _exit_interrupted() -> None:
    """End with 130 now that the interrupt is reported. An interrupt that lands inside an
    extension module's initialisation (while the commands load) also marks the interpreter as
    "interrupted"; its normal shutdown then ends the process by SIGINT instead of exit 130 — after
    the document was printed. Skipping that shutdown keeps the documented exit code."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)


if __name__ == "__main__":
    entry()
