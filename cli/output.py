"""One output path for every command: rich text for people, one JSON document for machines.

How a command uses it (new commands get every guarantee below by following these four lines):

- declare `@json_option` and take `as_json`;
- on success render once: `emit_json(data)` with `--json`, else `console().print(...)`; user text
  inside rich markup goes through `escape()` (a party named "Gov [/bold]" is text, not markup);
- on failure raise, do not print: `InputError` (or `InvalidInput`) → exit 2 with every problem;
  `click.UsageError`/`click.BadParameter` → 2; `OperationFailed` → 1; `EnvironmentMissing` → 3;
  any exception with an `exit_code` of 1, 2 or 3 (e.g. `lab.errors.LabError`) → that code; an
  `OSError` (a read-only or full disk, a file where a folder should be) → 3, naming the path;
- write files with `stacks.design.atomic` (temp file, fsync, rename; a set of files swapped in one rename).

The root group (`cli.main`) runs every command through `run()`, which renders whatever the command
raised. The guarantees: with `--json` on the command line, stdout carries exactly one JSON document
in every outcome — success, invalid input, a click usage error, Ctrl-C, a crash — and every error
document has the shape `{"ok": false, "exit_code": N, "problems": [{file, line, field, message}]}`
(when a command already emitted its own document, e.g. a failed configure run, that one stands).
Exit codes are 0 ok, 1 failed, 2 invalid input, 3 environment missing, 130 interrupted. No
traceback is ever printed; an unexpected exception is one line and exit 1 (`SOVEREIGN_DEBUG=1`
re-raises it to show the traceback).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape  # commands import it from here: one way to escape user text

from stacks.design.loader import InputError, Problem
from stacks.design.project import ProjectInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


class _State:
    json_emitted = False  # a command's own document went out: an error must not add a second one


def console() -> Console:
    # Piped output (CI logs, files) has no terminal width; wide tables beat folded cells there.
    terminal = sys.stdout is not None and sys.stdout.isatty()  # None: stdout closed (`>&-`)
    return Console(highlight=False, width=None if terminal else 160)


def emit_json(payload: Any) -> None:
    # allow_nan=False: NaN and Infinity are not JSON; failing here still yields one valid document.
    text = json.dumps(payload, indent=2, sort_keys=False, default=str, allow_nan=False)
    _State.json_emitted = True
    click.echo(text)


class InvalidInput(click.ClickException):
    """Exit 2: the input is wrong; the problems name every file, line and field."""

    exit_code = EXIT_INVALID

    def __init__(self, error: InputError, as_json: bool = False):
        self.error, self.as_json = error, as_json
        super().__init__(str(error))


class OperationFailed(click.ClickException):
    exit_code = EXIT_FAILED


class EnvironmentMissing(click.ClickException):
    exit_code = EXIT_ENVIRONMENT


def fail_invalid(error: InputError, as_json: bool) -> NoReturn:
    raise InvalidInput(error, as_json)


def json_requested(args: Sequence[str], command: click.Command | None = None) -> bool:
    """Whether the command click runs has `--json` set, as click itself parses `args`: in
    `plan x --out --json`, `--json` is the folder given to --out, not the flag. Scanning the words
    is only the fallback for a command line click cannot parse as far as the flag (an unknown
    option, `--json` given to a group that has none), where the caller evidently wanted JSON."""
    parsed = _parsed(command, args) if command is not None else None
    if parsed is not None and parsed[0] is not None:
        return parsed[0]
    return "--json" in _options(args)


def _asks_for_text(args: Sequence[str], command: click.Command | None = None) -> bool:
    parsed = _parsed(command, args) if command is not None else None
    if parsed is not None:
        return parsed[1]
    return any(flag in _options(args) for flag in ("-h", "--help", "--version"))


def _options(args: Sequence[str]) -> list[str]:
    args = list(args)
    return args[: args.index("--")] if "--" in args else args


def _parsed(command: click.Command, args: Sequence[str]) -> tuple[bool | None, bool] | None:
    """(the `--json` value of the command that would run, or None if it has none; whether --help or
    --version was given) from click's own parse, in resilient mode as shell completion does it: no
    callback runs and no error is raised for a missing argument. None where click cannot parse."""
    as_json: bool | None = None
    text = False
    try:
        ctx = command.make_context(command.name, list(args), resilient_parsing=True)
        while True:
            if "as_json" in ctx.params:
                as_json = bool(ctx.params["as_json"])
            text = text or any(  # --help and --version are click's eager flags (names vary by version)
                isinstance(param, click.Option) and param.is_eager and param.is_flag and param.name is not None
                and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE
                for param in ctx.command.get_params(ctx)
            )
            protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click < 8.2
            rest = [*protected, *ctx.args]
            if not isinstance(ctx.command, click.Group) or not rest:
                return as_json, text
            name, sub, rest = ctx.command.resolve_command(ctx, rest)
            if sub is None:
                return as_json, text
            ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=True)
    except (click.ClickException, click.exceptions.Exit):
        return None


def run(main: Callable[..., Any], args: Sequence[str] | None, **kwargs: Any) -> NoReturn:
    """Run click's `main` without its own error handling, then exit with the documented code."""
    argv = list(sys.argv[1:] if args is None else args)
    command = getattr(main, "__self__", None)  # the group whose bound `main` this is
    command = command if isinstance(command, click.Command) else None
    as_json = json_requested(argv, command)
    _State.json_emitted = False
    try:
        if as_json and _asks_for_text(argv, command):  # --help/--version print text: wrap it in the one document
            with contextlib.redirect_stdout(io.StringIO()) as text:
                result = main(args=argv, standalone_mode=False, **kwargs)
            emit_json({"ok": True, "text": text.getvalue()})
        else:
            result = main(args=argv, standalone_mode=False, **kwargs)
        code = result if isinstance(result, int) else EXIT_OK
    except SystemExit:
        raise
    except BaseException as exc:  # every outcome is rendered here, interrupts included
        if not isinstance(exc, Exception | KeyboardInterrupt):
            raise
        code = report(exc, as_json)
    sys.exit(code)


def report(exc: BaseException, as_json: bool) -> int:
    """Render an exception as text on stderr or as the one JSON document; return the exit code."""
    code, problems = classify(exc)
    previous = None
    if code == EXIT_INTERRUPTED:  # a second Ctrl-C must not interrupt the report of the first
        with contextlib.suppress(ValueError):  # (only the main thread may set handlers)
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if as_json:
            if not _State.json_emitted:
                document = {"ok": False, "exit_code": code, "problems": [p.to_dict() for p in problems]}
                click.echo(json.dumps(document, indent=2, default=str))
        elif isinstance(exc, click.UsageError):
            exc.show()  # click's usage line and hint, as people expect from a CLI
        else:
            _print_problems(exc, problems)
    except OSError:  # stdout or stderr closed (a pipe reader that quit): nothing left to tell
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return code


def classify(exc: BaseException) -> tuple[int, list[Problem]]:
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        return EXIT_INTERRUPTED, [Problem("", None, "", "interrupted")]
    if isinstance(exc, InputError):
        return EXIT_INVALID, exc.problems
    if isinstance(exc, InvalidInput):
        return EXIT_INVALID, exc.error.problems
    if isinstance(exc, ProjectInvalid):
        return EXIT_INVALID, [Problem(str(exc.file), None, exc.field, exc.message)]
    if isinstance(exc, click.BadParameter):  # MissingParameter too: the field is the option or argument
        param = exc.param
        named = (param.opts[0] if isinstance(param, click.Option) else param.human_readable_name) if param else ""
        field = exc.param_hint if isinstance(exc.param_hint, str) else named
        return exc.exit_code, [Problem("", None, field.strip("'\""), exc.message or exc.format_message())]
    if isinstance(exc, click.ClickException):
        return exc.exit_code, [Problem("", None, "", exc.format_message())]
    code = getattr(exc, "exit_code", None)
    if code in (EXIT_FAILED, EXIT_INVALID, EXIT_ENVIRONMENT):  # library errors that carry their code
        return code, [Problem("", None, "", str(exc))]
    if isinstance(exc, OSError):
        where = str(exc.filename) if exc.filename is not None else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        return EXIT_ENVIRONMENT, [Problem(where, None, "", f"cannot write or read here: {reason}")]
    if os.environ.get("SOVEREIGN_DEBUG"):
        raise exc
    message = f"unexpected {type(exc).__name__}: {exc} (SOVEREIGN_DEBUG=1 shows the traceback)"
    return EXIT_FAILED, [Problem("", None, "", message)]


def _print_problems(exc: BaseException, problems: list[Problem]) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if isinstance(exc, InputError | InvalidInput):
        count = len(problems)
        err.print(f"[bold red]error:[/] {count} problem{'s' if count != 1 else ''} in the input")
        for problem in problems:
            err.print(f"  {problem}", markup=False)
        return
    for problem in problems:
        where = f"{problem.file}: " if problem.file else ""
        err.print(f"[bold red]error:[/] {escape(where + problem.message)}")
