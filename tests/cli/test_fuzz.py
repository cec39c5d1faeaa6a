"""Fuzz the CLI in-process with mutated partnerships and raw bytes: never a traceback, `--json`
always one parseable document, the exit code always one of the documented ones."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from tests.strategies import partnerships, yaml_values

EXIT_CODES = {0, 1, 2, 3, 130}
# Bounded so `make test` keeps its time; SOVEREIGN_FUZZ_EXAMPLES=5000 for a deep run.
FUZZ = settings(
    max_examples=int(os.environ.get("SOVEREIGN_FUZZ_EXAMPLES", "80")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Characters that matter to YAML, rich markup and terminals.
SPICE = st.sampled_from(
    ["[", "]", "[/]", "[/bold]", ":", "- ", "{", "}", "&a", "*a", "!!", "<<: ", "#", "'", '"', "\n", "\t",
     "\x00", "\x1b", "\u2028", "010", "NO", "1e308", ".inf", "17:04", "~", "? ", "|", ">", "%YAML 1.1\n"]
)


def check(data: bytes, command: str, as_json: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="h7fuzz-") as folder:
        path = Path(folder) / "Pulumi.fz-staging.yaml"
        path.write_bytes(data)
        args = [command, str(path), *(["--json"] if as_json else [])]
        if command == "plan":
            args += ["--out", str(Path(folder) / "out")]
        result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in EXIT_CODES
    assert "Traceback" not in result.output
    if as_json:
        document = json.loads(result.stdout)
        assert isinstance(document, dict)
        assert (result.exit_code == 0) == (document.get("ok", True) is not False)


def _stack(data: dict) -> bytes:
    return yaml.safe_dump({"config": {"sovereign:partnership": data}}, sort_keys=False, allow_unicode=True).encode()


@FUZZ
@given(partnerships(), st.data(), st.sampled_from(["validate", "plan"]), st.booleans())
def test_a_partnership_with_one_leaf_replaced(data, draw, command, as_json):
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        paths.append(path)

    walk(data, ())
    path = draw.draw(st.sampled_from([p for p in paths if p]))
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = draw.draw(yaml_values | st.lists(SPICE, max_size=4).map("".join))
    check(_stack(data), command, as_json)


@FUZZ
@given(partnerships(), st.data(), st.sampled_from(["validate", "plan"]), st.booleans())
def test_a_partnership_with_its_text_spliced(data, draw, command, as_json):
    text = _stack(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(text)))
        cut = draw.draw(st.integers(0, 12))
        piece = "".join(draw.draw(st.lists(SPICE, max_size=3)))
        text = text[:at] + piece.encode() + text[at + cut :]
    check(text, command, as_json)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["validate", "plan"]), st.booleans())
def test_raw_bytes(data, command, as_json):
    check(data, command, as_json)
