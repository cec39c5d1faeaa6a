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


if __name__ == "__main__":
    main()
